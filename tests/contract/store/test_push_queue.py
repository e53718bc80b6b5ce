"""Store contract, PushQueue role: pushed readings wait, exactly as stored, until processed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from alertbot.domain.models import Kind, Reading
from alertbot.ports.store import Store
from tests.contract.store.helpers import BTC, ETH, NOW

SIGNAL = Reading(BTC, Kind.SIGNAL, -1.0, datetime(2026, 11, 27, 0, 0, 0, 123456, tzinfo=UTC),
                 label="Sell", source="push")
HOURLY = Reading(ETH, Kind.HOURLY, 1.0, NOW - timedelta(hours=1), label="",
                 fired_at=NOW - timedelta(hours=1))
GRADE = Reading(BTC, Kind.TM_GRADE, 62.4, NOW - timedelta(minutes=5))


async def test_enqueue_pushed_pending_round_trips_readings_and_tokens(
        contract_store: Store) -> None:
    store = contract_store
    first = await store.enqueue_pushed([SIGNAL, HOURLY], [BTC, ETH], NOW)
    second = await store.enqueue_pushed([GRADE], [BTC], NOW + timedelta(seconds=1))
    assert second > first
    batches = await store.pending_pushed(10)
    assert [b.batch_id for b in batches] == [first, second]
    assert batches[0].readings == (SIGNAL, HOURLY) and batches[0].tokens == (BTC, ETH)
    assert batches[1].readings == (GRADE,) and batches[1].received_at == NOW + timedelta(
        seconds=1)
    assert [b.batch_id for b in await store.pending_pushed(1)] == [first]


async def test_finish_pushed_leaves_only_unfinished_pending_repeat_counts_zero(
        contract_store: Store) -> None:
    store = contract_store
    ids = [await store.enqueue_pushed([GRADE], [BTC], NOW) for _ in range(3)]
    assert await store.finish_pushed([ids[0], ids[2]], NOW) == 2
    assert [b.batch_id for b in await store.pending_pushed(10)] == [ids[1]]
    assert await store.finish_pushed([ids[0], ids[2]], NOW) == 0
    assert await store.finish_pushed([], NOW) == 0
    assert await store.finish_pushed([ids[1], 10**12], NOW) == 1
    assert await store.pending_pushed(10) == []


async def test_purge_pushed_removes_old_processed_keeps_pending_and_recent(
        contract_store: Store) -> None:
    store = contract_store
    old_done = await store.enqueue_pushed([GRADE], [BTC], NOW)
    old_pending = await store.enqueue_pushed([SIGNAL], [BTC], NOW)
    recent_done = await store.enqueue_pushed([GRADE], [BTC], NOW + timedelta(days=2))
    await store.finish_pushed([old_done, recent_done], NOW + timedelta(days=2))
    assert await store.purge_pushed(NOW + timedelta(days=1)) == 1
    assert await store.purge_pushed(NOW + timedelta(days=1)) == 0
    assert [b.batch_id for b in await store.pending_pushed(10)] == [old_pending]
    # The recent one is still there: finishing it again finds it already processed.
    assert await store.finish_pushed([recent_done], NOW + timedelta(days=3)) == 0


async def test_enqueue_pushed_concurrent_writers_each_get_their_own_batch(
        contract_store: Store) -> None:
    store = contract_store
    ids = await asyncio.gather(*(store.enqueue_pushed([GRADE], [BTC], NOW) for _ in range(20)))
    assert len(set(ids)) == 20
    assert sorted(b.batch_id for b in await store.pending_pushed(100)) == sorted(ids)
