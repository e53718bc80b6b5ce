"""Store contract, Destinations role: policies, addresses, pause and re-keying."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import time, timedelta

import pytest

from alertbot.domain.models import (
    ALL_KINDS,
    Destination,
    Kind,
    Mode,
    Policy,
    QuietHours,
    Reason,
)
from alertbot.domain.throttle import Decision, Plan
from alertbot.ports.store import PlanKeys, Store
from tests.contract.store.helpers import (
    BTC,
    CON,
    DC,
    LATER,
    NOW,
    TG,
    flip,
    one_row,
    queued,
)


async def test_store_policy_round_trip(contract_store: Store) -> None:
    store = contract_store
    policy = Policy(max_alerts=3, window=timedelta(minutes=30),
                    quiet=QuietHours(time(22, 0), time(7, 0), "Europe/Berlin"),
                    mute_until=NOW + timedelta(hours=2), settle=timedelta(minutes=5),
                    modes={Kind.HOURLY: Mode.SILENT, Kind.FUNDAMENTAL: Mode.OFF})
    await store.set_policy(TG, policy, NOW, actor="mod")
    info = await store.destination(TG)
    assert info is not None and info.policy == policy
    assert (await store.recent_audit(1))[0].action == "policy"
    assert await store.destination(DC) is None


async def test_store_ensure_destination_keeps_existing_policy(contract_store: Store) -> None:
    store = contract_store
    await store.set_policy(CON, Policy(max_alerts=2), NOW)
    await store.ensure_destination(CON, NOW, address="https://example.test/hook", label="x")
    info = await store.destination(CON)
    assert info is not None
    assert (info.policy.max_alerts, info.address, info.label) == (2, "https://example.test/hook",
                                                                  "x")


async def test_store_destinations_filters(contract_store: Store) -> None:
    store = contract_store
    topic = Destination("telegram", "-1001", "7")
    for destination in (TG, topic, DC, CON):
        await store.ensure_destination(destination, NOW)
    await store.ensure_destination(Destination("webhook", "wh-1"), NOW,
                                   address="https://example.test/h")
    everything = await store.destinations()
    assert len(everything) == 5
    chat = await store.destinations(platform="telegram", chat_id="-1001")
    assert [i.destination for i in chat] == [TG, topic]
    assert [i.destination.platform for i in await store.destinations(with_address=True)] == [
        "webhook"]
    assert len(await store.destinations(limit=2)) == 2
    assert await store.destinations(platform="discord", chat_id="nope") == []


async def test_store_pause_dead_letters_queue_and_subscribe_resumes(
        contract_store: Store) -> None:
    store = contract_store
    await store.subscribe(TG, BTC.token_id, ALL_KINDS, NOW - timedelta(hours=1))
    await store.record_poll([], [flip()], NOW)
    assert await store.pause(TG, "bot was blocked", NOW) == 1
    assert await store.pause(TG, "again", NOW) == 0
    info = await store.destination(TG)
    assert info is not None and info.paused_reason == "bot was blocked"
    assert await queued(store, TG) == 0
    assert (await store.subscriptions(TG))[0].paused_reason == "bot was blocked"
    decisions = await store.recent_decisions(TG, 5)
    assert decisions[0].reason == Reason.DESTINATION_GONE.value
    assert (await store.watched()).kinds_mask == 0
    assert await store.subscribe(TG, BTC.token_id, (Kind.SIGNAL,), NOW)
    info = await store.destination(TG)
    assert info is not None and info.paused_reason == ""


async def test_store_rekey_moves_subscriptions_policy_and_queue(contract_store: Store) -> None:
    store = contract_store
    new = Destination("telegram", "-1009")
    await store.set_policy(TG, Policy(max_alerts=4), NOW)
    await store.subscribe(TG, BTC.token_id, (Kind.SIGNAL,), NOW - timedelta(hours=1))
    await store.subscribe(new, BTC.token_id, (Kind.HOURLY,), NOW - timedelta(hours=1))
    await store.record_poll([], [flip()], NOW)
    assert await store.rekey(TG, new, NOW) == 1
    assert await store.subscriptions(TG) == []
    (sub,) = await store.subscriptions(new)
    assert sub.kinds == (Kind.SIGNAL, Kind.HOURLY)
    assert await queued(store, new) == 1
    assert await store.destination(TG) is None


async def test_store_change_policy_applies_to_the_current_policy_and_audits(
    contract_store: Store,
) -> None:
    store = contract_store
    await store.set_policy(TG, Policy(max_alerts=3), NOW)
    result = await store.change_policy(
        TG, lambda p: replace(p, mute_until=NOW + timedelta(hours=1)), NOW, actor="mod",
        detail=lambda p: f"mute until {p.mute_until:%H:%M}")
    assert (result.before, result.changed) == (Policy(max_alerts=3), True)
    info = await store.destination(TG)
    assert info is not None and info.policy == result.after
    assert (info.policy.max_alerts, info.policy.mute_until) == (3, NOW + timedelta(hours=1))
    audit = (await store.recent_audit(1))[0]
    assert (audit.action, audit.detail, audit.actor) == ("policy", "mute until 13:00", "mod")


async def test_store_change_policy_concurrent_changes_keep_every_field(
    contract_store: Store,
) -> None:
    store = contract_store
    quiet = QuietHours(time(22, 0), time(7, 0), "UTC")
    await asyncio.gather(
        store.change_policy(TG, lambda p: replace(p, quiet=quiet), NOW),
        store.change_policy(TG, lambda p: replace(p, mute_until=LATER), NOW),
        store.change_policy(TG, lambda p: replace(p, max_alerts=4), NOW),
        store.change_policy(TG, lambda p: replace(p, modes={**p.modes, Kind.HOURLY: Mode.OFF}),
                            NOW),
        store.change_policy(TG, lambda p: replace(p, modes={**p.modes, Kind.SIGNAL: Mode.SILENT}),
                            NOW),
    )
    info = await store.destination(TG)
    assert info is not None
    assert info.policy == Policy(max_alerts=4, quiet=quiet, mute_until=LATER,
                                 modes={Kind.HOURLY: Mode.OFF, Kind.SIGNAL: Mode.SILENT})


async def test_store_change_policy_no_change_or_error_writes_nothing(
    contract_store: Store,
) -> None:
    store = contract_store

    def broken(policy: Policy) -> Policy:
        raise ValueError("bad quiet hours")

    result = await store.change_policy(DC, lambda p: p, NOW)
    assert not result.changed and result.after == Policy()
    with pytest.raises(ValueError, match="bad quiet hours"):
        await store.change_policy(DC, broken, NOW)
    assert await store.destination(DC) is None
    assert await store.recent_audit(5) == []


async def test_store_change_policy_releases_held_rows_now(contract_store: Store) -> None:
    store = contract_store
    row = await one_row(store)
    await store.apply_plan(TG, Plan(held=[Decision(row, Reason.HELD_QUIET,
                                                   until=NOW + timedelta(hours=8))]),
                           PlanKeys(), NOW)
    assert await store.due_alerts(TG, NOW + timedelta(minutes=1)) == []
    result = await store.change_policy(TG, lambda p: replace(p, quiet=None, max_alerts=5),
                                       NOW + timedelta(minutes=1))
    assert result.released == 1
    [alert] = await store.due_alerts(TG, NOW + timedelta(minutes=1))
    assert (alert.row_id, alert.held) == (row, True)
    assert await store.next_due(["telegram"]) == NOW + timedelta(minutes=1)


async def test_store_charts_flag_round_trips_and_defaults_off(contract_store: Store) -> None:
    store = contract_store
    await store.ensure_destination(TG, NOW)
    info = await store.destination(TG)
    assert info is not None and info.policy.charts is False
    result = await store.change_policy(TG, lambda p: replace(p, charts=True), NOW, actor="mod")
    assert result.changed
    info = await store.destination(TG)
    assert info is not None and info.policy == Policy(charts=True)
    await store.set_policy(TG, Policy(max_alerts=2), NOW)
    info = await store.destination(TG)
    assert info is not None and info.policy.charts is False
