"""The shared PostgreSQL pool: URL, open and close, migrations and transactions.

Every role module subclasses PostgresConnection, so PostgresStore (all roles together) holds
one asyncpg pool. Queries are written with SQLite's `?` placeholders (`pg()` numbers them), so
the SQL of both backends stays side by side and a schema change ports mechanically. asyncpg
prepares each statement once per connection and reuses it (its statement cache).

Every database fault leaves the store as StoreError with the driver's error as `__cause__`
and the URL's password replaced (`redact_url`). Each method runs in one transaction at READ
COMMITTED; read-modify-write methods take a transaction advisory lock on what they change, so
they serialise against other processes the way SQLite's single writer does. A transaction the
server aborted for a deadlock or a serialization failure changed nothing and is run again, a
few times (`retried`, applied to every public method of the role classes).

Times: every port method that judges something against a window (due rows, throttle
history, retention) receives `now` as a parameter and uses it, because the dispatcher, the
throttle and the tests share one injected clock; `db_now()` reads the database clock for what
several hosts must agree on (migration records here; leases).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import asyncpg

from alertbot.ports.store import StoreError
from alertbot.store import migrate
from alertbot.store.urls import is_postgres, redact_url, url_password

log = logging.getLogger(__name__)

MIGRATIONS_PACKAGE = "alertbot.store.postgres"
"""PostgreSQL's migrations are `alertbot/store/postgres/migrations/NNNN_name.sql`."""
DEFAULT_POOL_SIZE = 4
"""Connections per process: one for the poller, the dispatcher lanes and chat commands share
the rest; each method holds one only for its transaction."""
MAX_POOL_SIZE = 100
DEFAULT_STATEMENT_TIMEOUT_MS = 30_000
"""A statement running longer is cancelled by the server (StoreError, nothing changed)."""
IDLE_IN_TRANSACTION_TIMEOUT_MS = 4_000
"""The server ends a session whose open transaction waits longer for its client. A leader
paused (or partitioned) inside an outbox write holds the leadership row FOR SHARE, which would
block every takeover until then; 4 s is below the 6 s lease, so failover is not delayed."""
CONNECT_TIMEOUT_S = 10.0
MIGRATION_LOCK = "alertbot.migrate"
"""Name of the session advisory lock held while migrating (hashed with the schema)."""
OWN_PARAMETERS = ("pool_size", "statement_timeout")
"""URL query parameters alertbot reads itself (the rest go to asyncpg and the server)."""
_PLACEHOLDER = re.compile(r"\?")
FAULTS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError,
    TimeoutError,
)
"""Driver and connection errors that become StoreError."""
RETRIED: tuple[type[BaseException], ...] = (asyncpg.DeadlockDetectedError,
                                            asyncpg.SerializationError)
"""Aborts (40P01, 40001) after which the whole transaction may simply run again."""
ATTEMPTS = 3
"""Runs of a method whose transaction was aborted by one of RETRIED, the first included."""
RETRY_PAUSE = 0.02
"""Seconds (times the attempt, jittered) before a run again, so the two sides of a deadlock
do not collide once more."""

P = ParamSpec("P")
R = TypeVar("R")


@functools.lru_cache(maxsize=1024)
def pg(sql: str) -> str:
    """SQL written with `?` placeholders, numbered for PostgreSQL ($1, $2, …)."""
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


def status_count(status: str) -> int:
    """Rows a command changed, from its status ("UPDATE 3", "INSERT 0 2")."""
    tail = status.rpartition(" ")[2]
    return int(tail) if tail.isdigit() else 0


def retried(method: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """`method` run again (up to ATTEMPTS runs) when the server aborted its transaction for a
    deadlock or a serialization failure.

    A store method is one transaction (`_tx`), so running it again is the transaction's retry:
    the aborted run committed nothing. The body of an `async with` cannot be replayed from the
    context manager, hence a wrapper around the method rather than inside `_tx`.
    """
    @functools.wraps(method)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return await method(*args, **kwargs)
            except StoreError as exc:
                if attempt == ATTEMPTS or not isinstance(exc.__cause__, RETRIED):
                    raise
                log.info("store: %s aborted (%s); running it again", method.__name__,
                         type(exc.__cause__).__name__)
                await asyncio.sleep(RETRY_PAUSE * attempt * random.uniform(0.5, 1.5))
        raise AssertionError("unreachable: the last attempt returns or raises")
    return run


class PostgresUrl:
    """A parsed `postgresql://` URL: asyncpg's DSN plus alertbot's own parameters.

    `?pool_size=N` (1–100) and `?statement_timeout=MS` are read here; any other query
    parameter goes to asyncpg (sslmode, …) or to the server as a setting (search_path, …).
    """

    def __init__(self, url: str) -> None:
        if not is_postgres(url):
            raise StoreError(f"not a PostgreSQL URL: {url.split(':', 1)[0]}://…")
        self.redacted = redact_url(url)
        try:
            parts = urlsplit(url)
            query = parse_qsl(parts.query, keep_blank_values=True)
            if not parts.hostname and not any(k == "host" for k, _ in query):
                raise ValueError("no host")
        except ValueError:
            raise StoreError(f"malformed PostgreSQL URL {self.redacted} (expected "
                             "postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE)") from None
        own = {k: v for k, v in query if k in OWN_PARAMETERS}
        rest = [(k, v) for k, v in query if k not in OWN_PARAMETERS]
        self.pool_size = _int_parameter(own, "pool_size", DEFAULT_POOL_SIZE, 1, MAX_POOL_SIZE,
                                        self.redacted)
        self.statement_timeout_ms = _int_parameter(own, "statement_timeout",
                                                   DEFAULT_STATEMENT_TIMEOUT_MS, 0, 86_400_000,
                                                   self.redacted)
        self.dsn = urlunsplit(parts._replace(query=urlencode(rest, quote_via=quote)))
        self.password = url_password(url)

    def redact(self, text: str) -> str:
        """`text` without this URL's password."""
        if self.password:
            text = text.replace(self.password, "***")
            text = text.replace(quote(self.password, safe=""), "***")
        return text


def _int_parameter(values: dict[str, str], name: str, default: int, low: int, high: int,
                   where: str) -> int:
    if name not in values:
        return default
    text = values[name]
    if not text.isdigit() or not low <= int(text) <= high:
        raise StoreError(f"{where}: {name} must be a whole number from {low} to {high}")
    return int(text)


class PostgresConnection:
    """An asyncpg pool on one PostgreSQL database (and schema, via search_path)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every public coroutine method a role class defines retries its aborted transaction."""
        super().__init_subclass__(**kwargs)
        for name, value in list(vars(cls).items()):
            if not name.startswith("_") and inspect.iscoroutinefunction(value):
                setattr(cls, name, retried(value))

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self._url = PostgresUrl(url)
        self._apply_migrations = migrate
        self._pool: asyncpg.Pool | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._url.redacted!r})"

    @property
    def location(self) -> str:
        """The database URL without its password."""
        return self._url.redacted

    async def open(self) -> None:
        """Connect the pool and migrate (or check the schema when migrating is off)."""
        if self._pool is not None:
            return
        try:
            self._pool = await asyncpg.create_pool(
                self._url.dsn, min_size=1, max_size=self._url.pool_size,
                timeout=CONNECT_TIMEOUT_S,
                server_settings={"statement_timeout": str(self._url.statement_timeout_ms),
                                 "idle_in_transaction_session_timeout":
                                     str(IDLE_IN_TRANSACTION_TIMEOUT_MS),
                                 "application_name": "alertbot", "TimeZone": "UTC"},
            )
            await self._migrate(apply=self._apply_migrations)
        except FAULTS as exc:
            await self.close()
            raise StoreError(f"cannot open database {self._url.redacted}: "
                             f"{self._url.redact(str(exc))}") from exc
        except BaseException:
            # A refused schema must not leave the pool open.
            await self.close()
            raise

    async def migrate(self) -> list[str]:
        """Apply pending migrations now (even when migrating on start is off); their names."""
        try:
            return await self._migrate(apply=True)
        except FAULTS as exc:
            raise self._fault(exc) from exc

    async def _migrate(self, *, apply: bool) -> list[str]:
        async with self._connection() as conn:
            # A session lock: a second replica starting at once waits here, then finds
            # nothing left to apply.
            key = await conn.fetchval("SELECT hashtext($1 || current_schema())", MIGRATION_LOCK)
            await conn.execute("SELECT pg_advisory_lock($1)", key)
            try:
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                    " name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)")
                current = int(await conn.fetchval(
                    "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))
                todo = migrate.pending(current, migrate.available(MIGRATIONS_PACKAGE),
                                       apply=apply)
                for migration in todo:
                    async with conn.transaction():
                        await conn.execute(migration.sql)
                        await conn.execute(
                            "INSERT INTO schema_migrations (version, name, applied_at)"
                            " VALUES ($1, $2, EXTRACT(EPOCH FROM clock_timestamp()))",
                            migration.version, migration.name)
                return [m.name for m in todo]
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", key)

    async def schema_version(self) -> int:
        """Highest applied migration."""
        async with self._read() as conn:
            return int(await conn.fetchval(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))

    async def db_now(self) -> datetime:
        """The database server's clock (the same for every replica)."""
        async with self._read() as conn:
            value = await conn.fetchval("SELECT EXTRACT(EPOCH FROM clock_timestamp())")
        return datetime.fromtimestamp(float(value), UTC)

    async def close(self) -> None:
        """Close the pool (idempotent)."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), CONNECT_TIMEOUT_S)
            except TimeoutError:
                # A connection still busy (or a server gone quiet): closing must not hang.
                pool.terminate()
            except BaseException:
                pool.terminate()
                raise

    async def ping(self) -> None:
        """Raise StoreError unless the database answers."""
        async with self._read() as conn:
            await conn.fetchval("SELECT 1")

    @property
    def _live_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreError("store is not open")
        return self._pool

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        async with self._live_pool.acquire() as conn:
            yield conn

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[asyncpg.Connection]:
        """One write transaction; a fault rolls it back and raises StoreError.

        A deadlock or serialization abort is retried by running the method again (`retried`).
        """
        try:
            async with self._live_pool.acquire() as conn, conn.transaction():
                yield conn
        except FAULTS as exc:
            raise self._fault(exc) from exc

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[asyncpg.Connection]:
        try:
            async with self._live_pool.acquire() as conn:
                yield conn
        except FAULTS as exc:
            raise self._fault(exc) from exc

    def _fault(self, exc: BaseException) -> StoreError:
        return StoreError(f"database {self._url.redacted}: {self._url.redact(str(exc))}")

    async def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[asyncpg.Record]:
        async with self._read() as conn:
            return list(await conn.fetch(pg(sql), *params))

    async def _fetchone(self, sql: str, params: Sequence[Any] = ()) -> asyncpg.Record | None:
        async with self._read() as conn:
            row: asyncpg.Record | None = await conn.fetchrow(pg(sql), *params)
            return row


async def lock_key(conn: asyncpg.Connection, *parts: str) -> None:
    """Hold a transaction advisory lock on a name until the caller's transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", "\x1f".join(parts))
