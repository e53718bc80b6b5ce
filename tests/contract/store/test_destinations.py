"""Store contract, Destinations role: policies, addresses, pause and re-keying."""

from __future__ import annotations

from datetime import time, timedelta

from alertbot.domain.models import (
    ALL_KINDS,
    Destination,
    Kind,
    Mode,
    Policy,
    QuietHours,
    Reason,
)
from alertbot.ports.store import Store
from tests.contract.store.helpers import BTC, CON, DC, NOW, TG, flip, queued


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
