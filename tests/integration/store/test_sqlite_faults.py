"""Real SQLite faults (locks, full disk, read-only) surface as StoreError and change nothing."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alertbot.domain.models import ALL_KINDS, Destination, Policy, Token
from alertbot.ports.store import StoreError
from alertbot.store.sqlite import SqliteStore
from tests.support import exclusive_lock

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
TOKENS = [Token(i, f"T{i}", "a long token name " * 20) for i in range(1, 400)]



@pytest.fixture
async def faulty(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """A store whose busy waits are short, so a held lock fails within the test."""
    store = SqliteStore(str(tmp_path / "faults.db"))
    await store.open()
    await store._conn.execute("PRAGMA busy_timeout = 50")
    yield store
    await store.close()


async def _max_pages(store: SqliteStore) -> None:
    async with store._conn.execute("PRAGMA page_count") as cur:
        row = await cur.fetchone()
    assert row is not None
    await store._conn.execute(f"PRAGMA max_page_count = {int(row[0])}")


async def test_sqlite_write_locked_by_another_connection_raises_store_error(
        faulty: SqliteStore) -> None:
    with exclusive_lock(faulty._path), pytest.raises(StoreError, match="locked") as excinfo:
        await faulty.upsert_tokens(TOKENS[:1], NOW)
    assert isinstance(excinfo.value.__cause__, sqlite3.OperationalError)
    await faulty.upsert_tokens(TOKENS[:1], NOW)
    assert [t.token_id for t in await faulty.tokens_by_symbol("T1")] == [1]


async def test_sqlite_write_lock_released_during_retries_succeeds(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "faults.db"))
    await store.open()
    try:
        await store._conn.execute("PRAGMA busy_timeout = 20")
        with exclusive_lock(store._path) as other:
            # Released after the first busy wait, before the retries run out.
            asyncio.get_running_loop().call_later(0.1, other.rollback)
            await store.upsert_tokens(TOKENS[:1], NOW)
        assert len(await store.tokens_by_symbol("T1")) == 1
    finally:
        await store.close()


async def test_sqlite_disk_full_raises_store_error_with_original_cause(
        faulty: SqliteStore) -> None:
    await _max_pages(faulty)
    with pytest.raises(StoreError, match="full") as excinfo:
        await faulty.upsert_tokens(TOKENS, NOW)
    assert "full" in str(excinfo.value.__cause__)
    assert "cannot rollback" not in str(excinfo.value)
    await faulty._conn.execute("PRAGMA max_page_count = 1000000")
    assert await faulty.tokens_by_symbol("T1") == []
    await faulty.upsert_tokens(TOKENS, NOW)
    assert len(await faulty.tokens_by_symbol("T1")) == 1


async def test_sqlite_read_only_database_raises_store_error_and_changes_nothing(
        faulty: SqliteStore) -> None:
    destination = Destination("telegram", "-1001")
    await faulty._conn.execute("PRAGMA query_only = ON")
    with pytest.raises(StoreError, match="readonly") as excinfo:
        await faulty.subscribe(destination, 1, ALL_KINDS, NOW)
    assert isinstance(excinfo.value.__cause__, sqlite3.OperationalError)
    await faulty._conn.execute("PRAGMA query_only = OFF")
    assert await faulty.subscriptions() == []
    assert await faulty.subscribe(destination, 1, ALL_KINDS, NOW)


async def test_sqlite_database_files_are_owner_only_under_any_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        store = SqliteStore(str(tmp_path / "private.db"))
        await store.open()
        try:
            await store.subscribe(Destination("webhook", "w"), 1, ALL_KINDS, NOW)
            paths = [tmp_path / name for name in ("private.db", "private.db-wal",
                                                  "private.db-shm")]
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in paths if p.exists()}
        finally:
            await store.close()
    finally:
        os.umask(old)
    assert "private.db-wal" in modes
    assert modes == dict.fromkeys(modes, 0o600)


WRITES: dict[str, Callable[[SqliteStore], Awaitable[object]]] = {
    "upsert_tokens": lambda s: s.upsert_tokens(TOKENS[:1], NOW),
    "record_poll": lambda s: s.record_poll([], [], NOW, {"k": "v"}),
    "subscribe": lambda s: s.subscribe(Destination("telegram", "-2"), 1, ALL_KINDS, NOW),
    "unsubscribe": lambda s: s.unsubscribe(Destination("telegram", "-1"), 1, ALL_KINDS, NOW),
    "ensure_destination": lambda s: s.ensure_destination(Destination("telegram", "-2"), NOW),
    "set_policy": lambda s: s.set_policy(Destination("telegram", "-1"), Policy(), NOW),
    "pause": lambda s: s.pause(Destination("telegram", "-1"), "gone", NOW),
    "rekey": lambda s: s.rekey(Destination("telegram", "-1"), Destination("telegram", "-3"),
                               NOW),
    "recover": lambda s: s.recover(NOW),
    "claim": lambda s: s.claim("akey", NOW),
    "add_audit": lambda s: s.add_audit(None, "test", "detail", "me"),
    "set_meta": lambda s: s.set_meta("k", "v"),
    "purge": lambda s: s.purge(NOW, NOW),
}


@pytest.mark.parametrize("call", sorted(WRITES))
async def test_sqlite_every_write_on_read_only_database_raises_store_error(
        faulty: SqliteStore, call: str) -> None:
    await faulty.subscribe(Destination("telegram", "-1"), 1, ALL_KINDS, NOW)
    await faulty._conn.execute("PRAGMA query_only = ON")
    with pytest.raises(StoreError) as excinfo:
        await WRITES[call](faulty)
    assert isinstance(excinfo.value.__cause__, sqlite3.Error)
    await faulty._conn.execute("PRAGMA query_only = OFF")
    assert len(await faulty.subscriptions()) == 1
