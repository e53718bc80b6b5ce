"""Store contract, Meta and Maintenance roles: bookkeeping, health, retention, backup, stats."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from alertbot.domain.models import ALL_KINDS, Policy
from alertbot.ports.store import Store, StoreError
from tests.contract.store.helpers import (
    BTC,
    DC,
    ETH,
    NOW,
    TG,
    finished_rows,
    flip,
)


async def test_store_meta_set_replaces_and_missing_is_none(contract_store: Store) -> None:
    store = contract_store
    await store.set_meta("replay.cursor", "42")
    await store.set_meta("replay.cursor", "43")
    assert await store.get_meta("replay.cursor") == "43"
    assert await store.get_meta("missing") is None


async def test_store_update_meta_concurrent_increments_all_count(contract_store: Store) -> None:
    store = contract_store

    def increment(value: str | None) -> str:
        return str(int(value or "0") + 1)

    results = await asyncio.gather(*(store.update_meta("calls", increment) for _ in range(40)))
    assert await store.get_meta("calls") == "40"
    assert sorted(int(r or 0) for r in results) == list(range(1, 41))


async def test_store_update_meta_none_or_same_writes_nothing(contract_store: Store) -> None:
    store = contract_store
    assert await store.update_meta("calls", lambda value: None) is None
    assert await store.get_meta("calls") is None
    await store.set_meta("calls", "7")
    assert await store.update_meta("calls", lambda value: None) == "7"
    assert await store.update_meta("calls", lambda value: value) == "7"
    assert await store.get_meta("calls") == "7"


async def test_store_ping_fails_after_close(contract_store: Store) -> None:
    store = contract_store
    await store.ping()
    await store.close()
    with pytest.raises(StoreError):
        await store.ping()
    await store.close()  # closing again is harmless


async def test_store_purge_removes_old_finished_history_only(contract_store: Store) -> None:
    store = contract_store
    old = NOW - timedelta(days=40)
    await finished_rows(store, old)
    await store.subscribe(DC, ETH.token_id, ALL_KINDS, NOW - timedelta(days=50))
    await store.record_poll([], [flip(ETH, detected=old)], old)  # still queued: kept
    result = await store.purge(NOW - timedelta(days=30), NOW)
    assert (result.outbox, result.messages, result.changes) == (2, 1, 2)
    assert result.decisions >= 2
    assert await store.recent_decisions(TG, 10) == []
    assert await store.sent_times(TG, old - timedelta(days=1)) == []
    assert (await store.outbox_stats()).by_state == {"pending": 1}
    assert await store.recent_changes(BTC.token_id, None, 5) == []
    assert len(await store.recent_changes(ETH.token_id, None, 5)) == 1
    assert (await store.purge(NOW - timedelta(days=30), NOW)).total == 0


async def test_store_purge_keeps_rate_history_of_longest_window(contract_store: Store) -> None:
    store = contract_store
    old = NOW - timedelta(days=3)
    await finished_rows(store, old)
    await store.set_policy(TG, Policy(max_alerts=5, window=timedelta(days=7)), NOW)
    result = await store.purge(NOW - timedelta(days=1), NOW)
    assert result.messages == 0 and result.outbox == 2
    assert len(await store.sent_times(TG, old - timedelta(seconds=1))) == 1


async def test_store_stats_counts_rows_and_outbox(contract_store: Store) -> None:
    store = contract_store
    await finished_rows(store, NOW)
    stats = await store.stats()
    assert stats.schema_version >= 1
    assert stats.size_bytes > 0
    assert stats.tables["outbox"] == 2 and stats.tables["changes"] == 2
    assert stats.tables["messages"] == 1 and stats.tables["subscriptions"] == 1
    assert stats.outbox.by_state == {"sent": 1, "dead": 1}
