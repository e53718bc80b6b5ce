"""Store contract, Outbox role: the delivery state machine (the crash-safety core).

Rows are observed through the role's reads (due_alerts, committed, due_destinations,
next_due) and through outbox_stats, which counts rows by OutboxState.
"""

from __future__ import annotations

from datetime import timedelta

from alertbot.domain.models import ALL_KINDS, ALL_TOKENS, Policy, Reason
from alertbot.domain.throttle import Decision, Plan
from alertbot.ports.store import OutboxState, PlanKeys, Store
from tests.contract.store.helpers import (
    BTC,
    DC,
    ETH,
    LATER,
    NOW,
    TG,
    committed_row,
    flip,
    one_row,
)

PLATFORMS = ["telegram", "discord"]


async def states(store: Store) -> dict[str, int]:
    """Outbox rows by state."""
    return dict((await store.outbox_stats()).by_state)


async def test_store_due_destinations_filters_platform_and_exclusions(
        contract_store: Store) -> None:
    store = contract_store
    await one_row(store, TG)
    await one_row(store, DC, ETH)
    assert set(await store.due_destinations(NOW, 10, ["telegram", "discord"])) == {TG, DC}
    assert await store.due_destinations(NOW, 10, ["telegram"]) == [TG]
    assert await store.due_destinations(NOW, 10, ["telegram", "discord"], exclude=[TG]) == [DC]
    assert await store.due_destinations(NOW - timedelta(seconds=1), 10, ["telegram"]) == []
    assert await store.next_due(["telegram"]) == NOW


async def test_store_single_message_lifecycle(contract_store: Store) -> None:
    store = contract_store
    row = await one_row(store)
    plan = Plan(singles=[Decision(row, Reason.SENT, silent=True)])
    recorded = await store.apply_plan(TG, plan, PlanKeys(singles={row: "akey"}), NOW)
    assert recorded == {Reason.SENT: 1}
    assert await store.due_alerts(TG, NOW) == []
    (message,) = await store.committed(TG, NOW)
    assert (message.key, message.row_ids, message.silent) == ("akey", (row,), True)
    await store.claim("akey", NOW)
    changes = await store.mark_sent(TG, "akey", "m-1", NOW + timedelta(seconds=1))
    assert [c.change_id for c in changes] == [flip().change_id]
    assert await store.committed(TG, NOW + timedelta(days=1)) == []
    assert await store.sent_times(TG, NOW - timedelta(hours=1)) == [NOW + timedelta(seconds=1)]
    assert (await store.outbox_stats()).by_state == {"sent": 1}
    assert [d.reason for d in await store.recent_decisions(TG, 5)] == ["sent"]


async def test_store_digest_groups_rows_under_one_key(contract_store: Store) -> None:
    store = contract_store
    await store.subscribe(TG, ALL_TOKENS, ALL_KINDS, NOW - timedelta(hours=1))
    await store.record_poll([], [flip(BTC), flip(ETH)], NOW)
    rows = [a.row_id for a in await store.due_alerts(TG, NOW)]
    plan = Plan(digest=[Decision(r, Reason.DIGEST) for r in rows])
    await store.apply_plan(TG, plan, PlanKeys(digest="dkey"), NOW)
    (message,) = await store.committed(TG, NOW)
    assert message.row_ids == tuple(rows) and len(message.changes) == 2
    await store.mark_sent(TG, "dkey", "m-9", NOW)
    assert len(await store.sent_times(TG, NOW - timedelta(hours=1))) == 1


async def test_store_held_group_waits_until_due_then_returns_whole(
        contract_store: Store) -> None:
    store = contract_store
    await store.subscribe(TG, ALL_TOKENS, ALL_KINDS, NOW - timedelta(hours=1))
    await store.record_poll([], [flip(BTC), flip(ETH)], NOW)
    first, second = (a.row_id for a in await store.due_alerts(TG, NOW))
    later = NOW + timedelta(minutes=10)
    plan = Plan(held=[Decision(first, Reason.HELD_RATE, until=later),
                      Decision(second, Reason.HELD_RATE, until=later + timedelta(minutes=5))])
    await store.apply_plan(TG, plan, PlanKeys(), NOW)
    assert await store.due_alerts(TG, NOW + timedelta(minutes=5)) == []
    assert await store.due_destinations(NOW + timedelta(minutes=5), 5, ["telegram"]) == []
    group = await store.due_alerts(TG, later)
    assert [(a.row_id, a.held) for a in group] == [(first, True), (second, True)]
    # Holding again with the same reason records no second decision.
    assert await store.apply_plan(TG, plan, PlanKeys(), later) == {}
    assert [d.reason for d in await store.recent_decisions(TG, 5)] == ["held_rate"] * 2


async def test_store_suppressed_rows_are_final(contract_store: Store) -> None:
    store = contract_store
    row = await one_row(store)
    await store.apply_plan(TG, Plan(suppressed=[Decision(row, Reason.MUTED)]), PlanKeys(), NOW)
    await store.apply_plan(TG, Plan(singles=[Decision(row, Reason.SENT)]),
                           PlanKeys(singles={row: "akey"}), NOW)
    assert await store.committed(TG, NOW) == []
    assert (await store.outbox_stats()).by_state == {"suppressed": 1}


async def test_store_due_alerts_carry_the_next_change_of_the_series(
        contract_store: Store) -> None:
    store = contract_store
    await store.subscribe(TG, BTC.token_id, ALL_KINDS, NOW - timedelta(hours=1))
    up = flip(to=1.0, detected=NOW)
    down = flip(to=-1.0, detected=NOW + timedelta(seconds=30), source_day=1)
    await store.record_poll([], [up], NOW)
    await store.record_poll([], [down], NOW + timedelta(seconds=30))
    alerts = await store.due_alerts(TG, NOW + timedelta(minutes=1))
    assert alerts[0].next_change == down and alerts[0].next_row_id == alerts[1].row_id
    assert alerts[1].next_change is None


async def test_store_retry_counts_attempts_and_reschedules(contract_store: Store) -> None:
    store = contract_store
    row = await one_row(store)
    await store.apply_plan(TG, Plan(singles=[Decision(row, Reason.SENT)]),
                           PlanKeys(singles={row: "akey"}), NOW)
    await store.claim("akey", NOW)
    later = NOW + timedelta(seconds=30)
    await store.mark_retry(TG, "akey", later, "HTTP 502", Reason.RETRY, True, NOW)
    await store.mark_retry(TG, "akey", later, "429", Reason.RATE_LIMITED, False, NOW)
    assert await store.committed(TG, NOW) == []
    (message,) = await store.committed(TG, later)
    assert message.attempts == 1
    await store.mark_dead(TG, "akey", "gave up", Reason.DEAD, later)
    assert (await store.outbox_stats()).by_state == {"dead": 1}
    reasons = [d.reason for d in await store.recent_decisions(TG, 10)]
    assert reasons[:3] == ["dead", "rate_limited", "retry"]


async def test_store_recover_makes_in_flight_rows_due_with_same_key(
        contract_store: Store) -> None:
    store = contract_store
    row = await one_row(store)
    await store.apply_plan(TG, Plan(singles=[Decision(row, Reason.SENT)]),
                           PlanKeys(singles={row: "akey"}), NOW)
    await store.claim("akey", NOW)
    await store.mark_retry(TG, "akey", NOW + timedelta(hours=1), "x", Reason.RETRY, True, NOW)
    await store.claim("akey", NOW)
    assert await store.recover(NOW + timedelta(seconds=5)) == 1
    (message,) = await store.committed(TG, NOW + timedelta(seconds=5))
    assert message.key == "akey"
    stats = await store.outbox_stats()
    assert stats.by_state == {"sending": 1} and stats.oldest_pending == NOW


# ------------------------------------------------------------------ state transitions


async def test_outbox_committed_row_claimed_then_sent_moves_pending_sending_sent(
        contract_store: Store) -> None:
    store = contract_store
    await committed_row(store)
    assert await states(store) == {OutboxState.PENDING: 1}
    await store.claim("akey", NOW)
    assert await states(store) == {OutboxState.SENDING: 1}
    await store.mark_sent(TG, "akey", "m-1", NOW)
    assert await states(store) == {OutboxState.SENT: 1}
    assert await store.due_destinations(LATER, 10, PLATFORMS) == []
    assert await store.next_due(PLATFORMS) is None
    assert (await store.outbox_stats()).oldest_pending is None


async def test_outbox_committed_or_claimed_row_never_gets_a_second_decision_or_key(
        contract_store: Store) -> None:
    store = contract_store
    row = await committed_row(store)
    again = Plan(singles=[Decision(row, Reason.SENT)])
    assert await store.apply_plan(TG, again, PlanKeys(singles={row: "other"}), NOW) == {}
    await store.claim("akey", NOW)
    await store.claim("akey", NOW + timedelta(seconds=1))  # a repeated claim is harmless
    assert await store.due_alerts(TG, LATER) == []
    assert await store.apply_plan(TG, again, PlanKeys(singles={row: "other"}), NOW) == {}
    # Still offered for sending, under its own key only: a crash must not lose it.
    assert [m.key for m in await store.committed(TG, NOW)] == ["akey"]
    assert await states(store) == {OutboxState.SENDING: 1}


async def test_outbox_retry_returns_sending_row_to_pending_until_due(
        contract_store: Store) -> None:
    store = contract_store
    await committed_row(store)
    await store.claim("akey", NOW)
    until = NOW + timedelta(minutes=2)
    await store.mark_retry(TG, "akey", until, "HTTP 502", Reason.RETRY, True, NOW)
    assert await states(store) == {OutboxState.PENDING: 1}
    assert await store.next_due(PLATFORMS) == until
    assert await store.due_destinations(until - timedelta(seconds=1), 10, PLATFORMS) == []
    assert await store.due_destinations(until, 10, PLATFORMS) == [TG]
    assert await store.due_alerts(TG, until) == []  # decided already: no second throttle pass
    await store.claim("akey", until)
    assert await states(store) == {OutboxState.SENDING: 1}


async def test_outbox_held_rows_released_by_a_later_plan_become_pending(
        contract_store: Store) -> None:
    store = contract_store
    await store.subscribe(TG, ALL_TOKENS, ALL_KINDS, NOW - timedelta(hours=1))
    await store.record_poll([], [flip(BTC), flip(ETH)], NOW)
    rows = [a.row_id for a in await store.due_alerts(TG, NOW)]
    until = NOW + timedelta(minutes=10)
    held = Plan(held=[Decision(r, Reason.HELD_QUIET, until=until) for r in rows])
    await store.apply_plan(TG, held, PlanKeys(), NOW)
    assert await states(store) == {OutboxState.HELD: 2}
    assert await store.next_due(PLATFORMS) == until
    assert await store.committed(TG, until) == []
    recorded = await store.apply_plan(TG, Plan(digest=[Decision(r, Reason.DIGEST) for r in rows]),
                                      PlanKeys(digest="dkey"), until)
    assert recorded == {Reason.DIGEST: 2}
    assert await states(store) == {OutboxState.PENDING: 2}
    (message,) = await store.committed(TG, until)
    assert (message.key, message.row_ids) == ("dkey", tuple(rows))
    assert await store.due_alerts(TG, LATER) == []


async def test_outbox_deferred_row_stays_pending_until_its_time(contract_store: Store) -> None:
    store = contract_store
    row = await one_row(store)
    until = NOW + timedelta(minutes=3)
    await store.apply_plan(TG, Plan(deferred=[Decision(row, Reason.SETTLING, until=until)]),
                           PlanKeys(), NOW)
    assert await states(store) == {OutboxState.PENDING: 1}
    assert await store.due_alerts(TG, until - timedelta(seconds=1)) == []
    assert [a.row_id for a in await store.due_alerts(TG, until)] == [row]


async def test_outbox_mark_dead_from_sending_is_final(contract_store: Store) -> None:
    store = contract_store
    await committed_row(store)
    await store.claim("akey", NOW)
    await store.mark_dead(TG, "akey", "HTTP 400", Reason.DEAD, NOW)
    assert await states(store) == {OutboxState.DEAD: 1}
    # Late or repeated reports about the same message change nothing.
    await store.mark_retry(TG, "akey", NOW, "late", Reason.RETRY, True, NOW)
    await store.claim("akey", NOW)
    assert await store.mark_sent(TG, "akey", "m-1", NOW) == []
    await store.mark_dead(TG, "akey", "again", Reason.DEAD, NOW)
    assert await states(store) == {OutboxState.DEAD: 1}
    assert await store.sent_times(TG, NOW - timedelta(days=1)) == []
    assert await store.next_due(PLATFORMS) is None
    assert [d.reason for d in await store.recent_decisions(TG, 10)] == ["dead", "sent"]


async def test_outbox_mark_sent_twice_records_one_message(contract_store: Store) -> None:
    store = contract_store
    await committed_row(store)
    await store.claim("akey", NOW)
    assert len(await store.mark_sent(TG, "akey", "m-1", NOW)) == 1
    assert await store.mark_sent(TG, "akey", "m-2", NOW + timedelta(seconds=1)) == []
    await store.mark_dead(TG, "akey", "late failure", Reason.DEAD, NOW)
    assert await store.sent_times(TG, NOW - timedelta(days=1)) == [NOW]
    assert await states(store) == {OutboxState.SENT: 1}


async def test_outbox_recover_touches_only_sending_rows(contract_store: Store) -> None:
    store = contract_store
    await committed_row(store, "akey", TG, BTC)
    await store.claim("akey", NOW)
    await committed_row(store, "bkey", DC, ETH)
    await store.claim("bkey", NOW)
    retry_at = NOW + timedelta(hours=1)
    await store.mark_retry(DC, "bkey", retry_at, "HTTP 502", Reason.RETRY, True, NOW)
    restart = NOW + timedelta(seconds=5)
    assert await store.recover(restart) == 1
    assert await store.committed(DC, restart) == []  # a scheduled retry keeps its time
    assert await store.next_due(["discord"]) == retry_at
    assert await store.recover(restart) == 1  # safe to repeat
    assert [m.key for m in await store.committed(TG, restart)] == ["akey"]
    assert await states(store) == {OutboxState.SENDING: 1, OutboxState.PENDING: 1}


async def test_outbox_suppressed_row_is_never_due(contract_store: Store) -> None:
    store = contract_store
    row = await one_row(store)
    await store.apply_plan(TG, Plan(suppressed=[Decision(row, Reason.MUTED)]), PlanKeys(), NOW)
    assert await store.due_alerts(TG, LATER) == []
    assert await store.committed(TG, LATER) == []
    assert await store.due_destinations(LATER, 10, PLATFORMS) == []
    assert await store.next_due(PLATFORMS) is None
    assert await store.recover(LATER) == 0
    assert (await store.record_poll([], [flip()], LATER)).outbox_rows == 0
    assert await states(store) == {OutboxState.SUPPRESSED: 1}


# ------------------------------------------------------------------ decide (plan + claim)


async def test_outbox_decide_commits_plan_returns_due_messages_and_claims_the_first(
        contract_store: Store) -> None:
    store = contract_store
    await committed_row(store, "aold")  # decided earlier and due: offered first, as committed
    await store.subscribe(TG, ETH.token_id, ALL_KINDS, NOW - timedelta(hours=1))
    await store.record_poll([], [flip(ETH)], NOW)
    (alert,) = await store.due_alerts(TG, NOW)
    plan = Plan(singles=[Decision(alert.row_id, Reason.SENT)])
    decided = await store.decide(TG, plan, PlanKeys(singles={alert.row_id: "anew"}), NOW)
    assert decided.recorded == {Reason.SENT: 1}
    assert decided.messages == await store.committed(TG, NOW)
    assert [m.key for m in decided.messages] == ["aold", "anew"]
    assert decided.messages[1].changes == (alert.change,)
    assert await states(store) == {OutboxState.SENDING: 1, OutboxState.PENDING: 1}
    # The claimed message is the one a crash now leaves for recovery, under its key.
    assert await store.recover(NOW) == 1
    await store.mark_sent(TG, "aold", "m-1", NOW)
    assert await states(store) == {OutboxState.SENT: 1, OutboxState.PENDING: 1}


async def test_outbox_decide_with_nothing_due_claims_nothing(contract_store: Store) -> None:
    store = contract_store
    row = await one_row(store)
    until = NOW + timedelta(minutes=5)
    plan = Plan(held=[Decision(row, Reason.HELD_RATE, until=until)])
    decided = await store.decide(TG, plan, PlanKeys(), NOW)
    assert (decided.recorded, decided.messages) == ({Reason.HELD_RATE: 1}, [])
    assert await states(store) == {OutboxState.HELD: 1}


# ------------------------------------------------------------------ delivery_view


async def test_outbox_delivery_view_equals_the_lane_reads_one_by_one(
        contract_store: Store) -> None:
    store = contract_store
    await store.subscribe(TG, ALL_TOKENS, ALL_KINDS, NOW - timedelta(hours=2))
    await store.set_policy(TG, Policy(max_alerts=5, window=timedelta(minutes=30)), NOW)
    await store.record_poll([], [flip(BTC, detected=NOW - timedelta(hours=1), source_day=0),
                                 flip(BTC, to=-1.0, detected=NOW - timedelta(minutes=20),
                                      source_day=1),
                                 flip(BTC, detected=NOW - timedelta(minutes=10),
                                      source_day=2)], NOW - timedelta(hours=1))
    old, recent, waiting = await store.due_alerts(TG, NOW)
    await store.apply_plan(TG, Plan(singles=[Decision(old.row_id, Reason.SENT),
                                             Decision(recent.row_id, Reason.SENT),
                                             Decision(waiting.row_id, Reason.SENT)]),
                           PlanKeys(singles={old.row_id: "aold", recent.row_id: "arecent",
                                             waiting.row_id: "await"}),
                           NOW - timedelta(hours=1))
    await store.mark_sent(TG, "aold", "m-1", NOW - timedelta(hours=1))  # outside the window
    await store.mark_sent(TG, "arecent", "m-2", NOW - timedelta(minutes=20))
    await store.mute_token(TG, ETH.token_id, NOW + timedelta(hours=1), NOW)
    await store.record_poll([], [flip(ETH)], NOW)
    view = await store.delivery_view(TG, NOW)
    assert view is not None
    assert view.info == await store.destination(TG)
    assert view.committed == await store.committed(TG, NOW)
    assert view.due == await store.due_alerts(TG, NOW)
    assert [m.key for m in view.committed] == ["await"]
    assert [a.change.token.token_id for a in view.due] == [ETH.token_id]
    assert view.mutes == await store.token_mutes(TG, NOW)
    assert [m.token.token_id for m in view.mutes] == [ETH.token_id]
    assert view.sent == [NOW - timedelta(minutes=20)]
    assert view.sent == await store.sent_times(TG, NOW - timedelta(minutes=30))


async def test_outbox_delivery_view_of_unknown_destination_is_none(
        contract_store: Store) -> None:
    assert await contract_store.delivery_view(DC, NOW) is None
