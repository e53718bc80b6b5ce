"""The shared SQLite connection: open and close, pragmas, migrations and transactions.

Every role module subclasses SqliteConnection, so SqliteStore (all roles together) holds
exactly one connection guarded by one lock.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import aiosqlite

from alertbot.ports.store import StoreError

BUSY_TIMEOUT_MS = 5000
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def sqlite_path(url: str) -> str:
    """Path of a `sqlite:///relative.db`, `sqlite:////absolute.db` or `sqlite:///:memory:` URL."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        raise StoreError(f"not a SQLite URL: {url.split(':', 1)[0]}://…")
    path = url[len(prefix):]
    if not path:
        raise StoreError("SQLite URL has no path (expected sqlite:///alertbot.db)")
    return path


def available_migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of every bundled migration, in order."""
    folder = resources.files("alertbot.store").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


class SqliteConnection:
    """One aiosqlite connection to a SQLite file, guarded by a lock."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._path!r})"

    async def open(self) -> None:
        """Connect, configure WAL and the busy timeout, and migrate."""
        if self._path != ":memory:":
            parent = await asyncio.to_thread(_parent_dir, self._path)
            if parent is not None:
                raise StoreError(f"database directory does not exist: {parent}")
        try:
            self._db = await aiosqlite.connect(self._path, isolation_level=None)
            await self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await self._db.execute("PRAGMA journal_mode = WAL")
            await self._db.execute("PRAGMA synchronous = NORMAL")
            await self._db.execute("PRAGMA foreign_keys = ON")
            await self._migrate()
        except sqlite3.Error as exc:
            await self.close()
            raise StoreError(f"cannot open database {self._path}: {exc}") from exc

    async def _migrate(self) -> None:
        db = self._conn
        await db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
        )
        async with db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations") as cur:
            row = await cur.fetchone()
        current = int(row[0]) if row else 0
        migrations = available_migrations()
        latest = migrations[-1][0] if migrations else 0
        if current > latest:
            raise StoreError(
                f"database schema version {current} is newer than this alertbot supports "
                f"({latest}); upgrade alertbot or point ALERTBOT_DATABASE_URL elsewhere"
            )
        for version, name, sql in migrations:
            if version <= current:
                continue
            now = datetime.now(UTC).timestamp()
            script = (
                f"BEGIN IMMEDIATE;\n{sql}\n"
                f"INSERT INTO schema_migrations (version, name, applied_at) "
                f"VALUES ({version}, '{name}', {now});\nCOMMIT;"
            )
            try:
                await db.executescript(script)
            except sqlite3.Error:
                if db.in_transaction:
                    await db.execute("ROLLBACK")
                raise

    async def schema_version(self) -> int:
        """Highest applied migration."""
        async with self._read() as db, db.execute(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    async def ping(self) -> None:
        """Raise StoreError unless the database answers."""
        try:
            async with self._read() as db, db.execute("SELECT 1") as cur:
                await cur.fetchone()
        except (sqlite3.Error, ValueError) as exc:
            raise StoreError(f"database unavailable: {exc}") from exc

    @property
    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("store is not open")
        return self._db

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            db = self._conn
            await db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                await db.execute("ROLLBACK")
                raise
            else:
                await db.execute("COMMIT")

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            yield self._conn

    async def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        async with self._read() as db, db.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def _fetchone(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        async with self._read() as db, db.execute(sql, params) as cur:
            return await cur.fetchone()


def _parent_dir(path: str) -> str | None:
    """The database file's folder if it does not exist (a clearer error than SQLite's)."""
    parent = os.path.dirname(os.path.abspath(os.path.expanduser(path)))
    return None if os.path.isdir(parent) else parent
