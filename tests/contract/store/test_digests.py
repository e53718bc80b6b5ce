"""Store contract, Digests role: schedules on destinations and each period decided once."""

from __future__ import annotations

from datetime import time, timedelta

from alertbot.domain.models import (
    ALL_KINDS,
    Change,
    Destination,
    DigestSchedule,
    Kind,
    Policy,
    Reason,
)
from alertbot.domain.scheduled_digest import Period, build_summary, digest_change
from alertbot.domain.throttle import Decision, Plan
from alertbot.ports.store import DigestOutcome, PlanKeys, Store
from tests.contract.store.helpers import BTC, DC, ETH, NOW, TG, flip

SCHEDULE = DigestSchedule(False, time(9, 0), "Europe/Berlin", only=True,
                          since=NOW - timedelta(days=1))
PERIOD = Period("daily:2026-11-27", NOW - timedelta(days=1), NOW)


def _change(destination: Destination = TG, period: Period = PERIOD) -> Change:
    summary = build_summary(SCHEDULE, period, [], {})
    return digest_change(destination, summary, NOW)


async def test_store_schedule_round_trips_in_the_policy(contract_store: Store) -> None:
    store = contract_store
    await store.set_policy(TG, Policy(digest=SCHEDULE), NOW)
    info = await store.destination(TG)
    assert info is not None and info.policy.digest == SCHEDULE and info.policy.digest_only
    assert [i.destination for i in await store.digest_destinations()] == [TG]
    changed = await store.change_policy(TG, lambda p: Policy(max_alerts=3, digest=p.digest), NOW)
    assert changed.after.digest == SCHEDULE
    await store.set_policy(TG, Policy(), NOW)
    assert await store.digest_destinations() == []


async def test_store_digest_destinations_leave_out_paused(contract_store: Store) -> None:
    store = contract_store
    await store.set_policy(TG, Policy(digest=SCHEDULE), NOW)
    await store.set_policy(DC, Policy(digest=SCHEDULE), NOW)
    await store.pause(DC, "gone", NOW)
    assert [i.destination for i in await store.digest_destinations()] == [TG]


async def test_store_record_digest_queues_one_row_once(contract_store: Store) -> None:
    store = contract_store
    await store.set_policy(TG, Policy(digest=SCHEDULE), NOW)
    change = _change()
    assert await store.record_digest(TG, PERIOD.key, PERIOD.start, PERIOD.end,
                                     DigestOutcome.QUEUED, change, NOW)
    # A second decision of the same period (another check, a restart) changes nothing.
    for outcome in DigestOutcome:
        assert not await store.record_digest(TG, PERIOD.key, PERIOD.start, PERIOD.end,
                                             outcome, change, NOW)
    (due,) = await store.due_alerts(TG, NOW)
    assert due.change.kind is Kind.SCHEDULED_DIGEST and due.change.cause == change.cause
    assert await store.decided_periods(TG, [PERIOD.key, "daily:2026-11-28"]) == {PERIOD.key}
    assert await store.decided_periods(DC, [PERIOD.key]) == set()


async def test_store_record_digest_same_period_other_destination_is_separate(
        contract_store: Store) -> None:
    store = contract_store
    for destination in (TG, DC):
        await store.set_policy(destination, Policy(digest=SCHEDULE), NOW)
        assert await store.record_digest(destination, PERIOD.key, PERIOD.start, PERIOD.end,
                                         DigestOutcome.QUEUED, _change(destination), NOW)
    assert len(await store.due_alerts(TG, NOW)) == len(await store.due_alerts(DC, NOW)) == 1


async def test_store_record_digest_skipped_is_a_decision_without_a_row(
        contract_store: Store) -> None:
    store = contract_store
    await store.set_policy(TG, Policy(digest=SCHEDULE), NOW)
    assert await store.record_digest(TG, PERIOD.key, PERIOD.start, PERIOD.end,
                                     DigestOutcome.SKIPPED, _change(), NOW)
    assert await store.due_alerts(TG, NOW) == []
    (decision,) = await store.recent_decisions(TG, 5)
    assert decision.reason == Reason.DIGEST_SKIPPED
    assert decision.change is not None and decision.change.kind is Kind.SCHEDULED_DIGEST
    assert "period ended" in decision.detail


async def test_store_record_digest_empty_is_recorded(contract_store: Store) -> None:
    store = contract_store
    await store.set_policy(TG, Policy(digest=SCHEDULE), NOW)
    assert await store.record_digest(TG, PERIOD.key, PERIOD.start, PERIOD.end,
                                     DigestOutcome.EMPTY, _change(), NOW)
    assert [d.reason for d in await store.recent_decisions(TG, 5)] == [Reason.DIGEST_EMPTY]
    assert await store.due_alerts(TG, NOW) == []


async def test_store_record_digest_paused_destination_gets_no_row(
        contract_store: Store) -> None:
    store = contract_store
    await store.set_policy(TG, Policy(digest=SCHEDULE), NOW)
    await store.pause(TG, "blocked", NOW)
    assert await store.record_digest(TG, PERIOD.key, PERIOD.start, PERIOD.end,
                                     DigestOutcome.QUEUED, _change(), NOW)
    assert (await store.outbox_stats()).by_state.get("pending", 0) == 0


async def test_store_period_changes_are_the_destinations_within_the_period(
        contract_store: Store) -> None:
    store = contract_store
    await store.subscribe(TG, BTC.token_id, ALL_KINDS, NOW - timedelta(days=3))
    await store.subscribe(DC, ETH.token_id, ALL_KINDS, NOW - timedelta(days=3))
    inside = flip(BTC, detected=NOW - timedelta(hours=2), source_day=1)
    before = flip(BTC, to=-1.0, detected=NOW - timedelta(days=2), source_day=0)
    at_end = flip(BTC, to=-1.0, detected=NOW, source_day=2)
    other = flip(ETH, detected=NOW - timedelta(hours=1), source_day=3)
    await store.record_poll([], [before, inside, at_end, other], NOW)
    found = await store.period_changes(TG, PERIOD.start, PERIOD.end)
    assert [c.change_id for c in found] == [inside.change_id]


async def test_store_period_changes_leave_out_kind_off_keep_digest_only(
        contract_store: Store) -> None:
    store = contract_store
    await store.subscribe(TG, BTC.token_id, ALL_KINDS, NOW - timedelta(days=3))
    await store.subscribe(TG, ETH.token_id, ALL_KINDS, NOW - timedelta(days=3))
    off = flip(BTC, detected=NOW - timedelta(hours=3), source_day=1)
    kept = flip(ETH, detected=NOW - timedelta(hours=2), source_day=2)
    await store.record_poll([], [off, kept], NOW - timedelta(hours=1))
    rows = {a.change.change_id: a.row_id for a in await store.due_alerts(TG, NOW)}
    await store.apply_plan(TG, Plan(suppressed=[
        Decision(rows[off.change_id], Reason.KIND_OFF),
        Decision(rows[kept.change_id], Reason.DIGEST_ONLY)]), PlanKeys(singles={}), NOW)
    found = await store.period_changes(TG, PERIOD.start, PERIOD.end)
    assert [c.change_id for c in found] == [kept.change_id]


async def test_store_period_changes_leave_out_muted_and_token_muted(
        contract_store: Store) -> None:
    store = contract_store
    await store.subscribe(TG, BTC.token_id, ALL_KINDS, NOW - timedelta(days=3))
    await store.subscribe(TG, ETH.token_id, ALL_KINDS, NOW - timedelta(days=3))
    muted = flip(BTC, detected=NOW - timedelta(hours=4), source_day=1)
    token_muted = flip(BTC, to=-1.0, detected=NOW - timedelta(hours=3), source_day=2)
    sent = flip(ETH, detected=NOW - timedelta(hours=2), source_day=3)
    await store.record_poll([], [muted, token_muted, sent], NOW - timedelta(hours=1))
    rows = {a.change.change_id: a.row_id for a in await store.due_alerts(TG, NOW)}
    await store.apply_plan(TG, Plan(suppressed=[
        Decision(rows[muted.change_id], Reason.MUTED, until=NOW),
        Decision(rows[token_muted.change_id], Reason.TOKEN_MUTED, until=NOW)]),
        PlanKeys(singles={}), NOW)
    found = await store.period_changes(TG, PERIOD.start, PERIOD.end)
    assert [c.change_id for c in found] == [sent.change_id]


async def test_store_rekey_keeps_decided_periods(contract_store: Store) -> None:
    store = contract_store
    await store.set_policy(TG, Policy(digest=SCHEDULE), NOW)
    await store.record_digest(TG, PERIOD.key, PERIOD.start, PERIOD.end,
                              DigestOutcome.EMPTY, _change(), NOW)
    moved = Destination(TG.platform, "-1002")
    await store.rekey(TG, moved, NOW)
    assert await store.decided_periods(moved, [PERIOD.key]) == {PERIOD.key}
    info = await store.destination(moved)
    assert info is not None and info.policy.digest == SCHEDULE
