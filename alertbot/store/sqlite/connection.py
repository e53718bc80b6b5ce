"""The shared SQLite connection: open and close, pragmas, migrations and transactions.

Every role module subclasses SqliteConnection, so SqliteStore (all roles together) holds
exactly one connection guarded by one lock.

Every database fault leaves the store as StoreError with the driver's error as `__cause__`
(`_tx` and `_read` translate them). A write lock held by another connection is waited out:
SQLite's busy timeout first, then a few retries with growing pauses, during which the lock is
given back so other callers are not stuck behind the wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import aiosqlite

from alertbot.ports.store import StoreError
from alertbot.store import migrate

BUSY_TIMEOUT_MS = 5000
BUSY_RETRIES = 3
"""Further attempts to start a write transaction after the busy timeout ran out."""
BUSY_BACKOFF = 0.1
"""Seconds before the first retry; doubled for each further one."""
DATABASE_MODE = 0o600
"""The database holds delivery addresses (secrets); SQLite gives -wal/-shm the same mode."""
MIGRATIONS_PACKAGE = "alertbot.store"
"""SQLite's migrations are `alertbot/store/migrations/NNNN_name.sql`."""


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
    """(version, file name, SQL) of every bundled SQLite migration, in order."""
    return [(m.version, m.name, m.sql) for m in migrate.available(MIGRATIONS_PACKAGE)]


class SqliteConnection:
    """One aiosqlite connection to a SQLite file, guarded by a lock."""

    def __init__(self, path: str, *, migrate: bool = True) -> None:
        self._path = path
        self._apply_migrations = migrate
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
                await asyncio.to_thread(_create_private, self._path)
            except OSError as exc:
                raise StoreError(f"cannot create database {self._path}: "
                                 f"{exc.strerror or exc}") from exc
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
        except BaseException:
            # A refused schema must not leave the connection (and its thread) open.
            await self.close()
            raise

    async def _migrate(self) -> None:
        db = self._conn
        await db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
        )
        async with db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations") as cur:
            row = await cur.fetchone()
        current = int(row[0]) if row else 0
        todo = migrate.pending(current, migrate.available(MIGRATIONS_PACKAGE),
                               apply=self._apply_migrations)
        for migration in todo:
            version, name, sql = migration.version, migration.name, migration.sql
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
        """One write transaction; a fault rolls it back and raises StoreError."""
        for attempt in range(BUSY_RETRIES + 1):
            async with self._lock:
                db = self._conn
                try:
                    if db.in_transaction:
                        # Left open by a failed ROLLBACK or a cancelled BEGIN; BEGIN would fail.
                        await db.execute("ROLLBACK")
                    await db.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as exc:
                    if not _is_busy(exc) or attempt == BUSY_RETRIES:
                        raise self._fault(exc) from exc
                except sqlite3.Error as exc:
                    raise self._fault(exc) from exc
                else:
                    try:
                        yield db
                        await db.execute("COMMIT")
                    except sqlite3.Error as exc:
                        await _rollback(db)
                        raise self._fault(exc) from exc
                    except BaseException:
                        await _rollback(db)
                        raise
                    return
            # Outside the lock, so readers go on while another connection writes.
            await asyncio.sleep(BUSY_BACKOFF * 2 ** attempt)

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise self._fault(exc) from exc

    def _fault(self, exc: sqlite3.Error) -> StoreError:
        return StoreError(f"database {os.path.basename(self._path)}: {exc}")

    # One hand-off to aiosqlite's thread per read: a cursor costs three (execute, fetch,
    # close), each a queue put and a wake-up of the loop, which under load wait for a core.
    async def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        async with self._read() as db:
            return list(await db.execute_fetchall(sql, params))

    async def _fetchone(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        rows = await self._fetchall(sql, params)
        return rows[0] if rows else None


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


async def _rollback(db: aiosqlite.Connection) -> None:
    """Roll back if a transaction is still open; never hide the error being handled."""
    # SQLite may already have rolled back by itself (e.g. on SQLITE_FULL); a ROLLBACK then
    # fails with "no transaction is active" and would replace the real error.
    if db.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            await db.execute("ROLLBACK")


def _create_private(path: str) -> None:
    """Create the database file owner-only (regardless of umask); leave an existing one."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, DATABASE_MODE)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, DATABASE_MODE)
    finally:
        os.close(fd)


def _parent_dir(path: str) -> str | None:
    """The database file's folder if it does not exist (a clearer error than SQLite's)."""
    parent = os.path.dirname(os.path.abspath(os.path.expanduser(path)))
    return None if os.path.isdir(parent) else parent
