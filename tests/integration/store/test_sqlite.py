"""SQLite specifics: migrations, schema versions, WAL, URLs, in-memory databases, backups."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alertbot.domain.models import ALL_KINDS, Destination
from alertbot.ports.store import StoreError
from alertbot.store.sqlite import SqliteStore
from alertbot.store.sqlite.connection import available_migrations, sqlite_path

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


async def test_sqlite_migrations_apply_once_and_are_recorded(tmp_path: Path) -> None:
    path = str(tmp_path / "a.db")
    for _ in range(2):
        store = SqliteStore(path)
        await store.open()
        assert await store.schema_version() == available_migrations()[-1][0]
        await store.close()
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT version, name FROM schema_migrations").fetchall()
    assert [r[0] for r in rows] == [m[0] for m in available_migrations()]


async def test_sqlite_newer_schema_is_refused_with_clear_message(tmp_path: Path) -> None:
    path = str(tmp_path / "a.db")
    store = SqliteStore(path)
    await store.open()
    await store.close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO schema_migrations VALUES (999, '0999_future.sql', 0)")
    with pytest.raises(StoreError, match="schema version 999 is newer"):
        await SqliteStore(path).open()


async def test_sqlite_uses_wal_and_busy_timeout(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "a.db"))
    await store.open()
    try:
        db = store._conn
        async with db.execute("PRAGMA journal_mode") as cur:
            assert (await cur.fetchone())[0] == "wal"
        async with db.execute("PRAGMA busy_timeout") as cur:
            assert (await cur.fetchone())[0] >= 1000
    finally:
        await store.close()


async def test_sqlite_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="directory does not exist"):
        await SqliteStore(str(tmp_path / "nope" / "a.db")).open()


@pytest.mark.parametrize(("url", "path"), [
    ("sqlite:///alertbot.db", "alertbot.db"),
    ("sqlite:////var/lib/alertbot/a.db", "/var/lib/alertbot/a.db"),
    ("sqlite:///:memory:", ":memory:"),
])
def test_sqlite_path_from_url(url: str, path: str) -> None:
    assert sqlite_path(url) == path


@pytest.mark.parametrize("url", ["postgresql://u:secretpw@h/db", "sqlite:///"])
def test_sqlite_path_bad_url_never_echoes_credentials(url: str) -> None:
    with pytest.raises(StoreError) as excinfo:
        sqlite_path(url)
    assert "secretpw" not in str(excinfo.value)


async def test_sqlite_backup_opens_as_a_store_with_the_same_rows(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "a.db"))
    await store.open()
    try:
        await store.subscribe(Destination("telegram", "-1001"), 1, ALL_KINDS, NOW)
        await store.backup(str(tmp_path / "copy.db"))
        copy = SqliteStore(str(tmp_path / "copy.db"))
        await copy.open()
        try:
            assert (await copy.stats()).tables == (await store.stats()).tables
        finally:
            await copy.close()
    finally:
        await store.close()


async def test_sqlite_in_memory_store_has_no_files_but_backs_up(tmp_path: Path) -> None:
    store = SqliteStore.from_url("sqlite:///:memory:")
    await store.open()
    try:
        await store.subscribe(Destination("telegram", "-1001"), 1, ALL_KINDS, NOW)
        stats = await store.stats()
        assert (stats.location, stats.wal_bytes, stats.tables["subscriptions"]) == (
            ":memory:", 0, 1)
        await store.backup(str(tmp_path / "copy.db"))
    finally:
        await store.close()
    copy = SqliteStore(str(tmp_path / "copy.db"))
    await copy.open()
    try:
        assert len(await copy.subscriptions()) == 1
    finally:
        await copy.close()


async def test_sqlite_claim_update_two_connections_one_winner(tmp_path: Path) -> None:
    # Two processes behind a load balancer each hold their own connection to the file.
    first, second = SqliteStore(str(tmp_path / "shared.db")), SqliteStore(
        str(tmp_path / "shared.db"))
    await first.open()
    await second.open()
    try:
        claims = [store.claim_update("telegram", update_id, NOW)
                  for update_id in range(10) for store in (first, second)]
        results = await asyncio.gather(*claims)
    finally:
        await first.close()
        await second.close()
    winners = [results[i] + results[i + 1] for i in range(0, len(results), 2)]
    assert winners == [1] * 10
