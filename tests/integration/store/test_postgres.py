"""PostgreSQL specifics: SKIP LOCKED claims, migrations under concurrency, faults, secrets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from alertbot.domain.models import ALL_KINDS, Reason
from alertbot.domain.throttle import Decision, Plan
from alertbot.ports.store import PlanKeys, StoreError
from alertbot.store import migrate
from alertbot.store.postgres import PostgresStore
from alertbot.store.postgres.connection import MIGRATIONS_PACKAGE
from tests.contract.store.helpers import BTC, NOW, TG, flip

LATEST = migrate.latest(migrate.available(MIGRATIONS_PACKAGE))


@pytest.fixture
async def pg_store(postgres_url: str) -> AsyncIterator[PostgresStore]:
    """An open PostgresStore on a fresh schema."""
    store = PostgresStore(postgres_url)
    await store.open()
    yield store
    await store.close()


async def _commit_digest(store: PostgresStore, count: int, key: str = "dkey") -> list[int]:
    await store.subscribe(TG, BTC.token_id, ALL_KINDS, NOW - timedelta(hours=1))
    await store.record_poll([], [flip(to=(-1.0) ** i, source_day=i) for i in range(count)], NOW)
    rows = [a.row_id for a in await store.due_alerts(TG, NOW)]
    await store.apply_plan(TG, Plan(digest=[Decision(r, Reason.SENT) for r in rows]),
                           PlanKeys(digest=key), NOW)
    return rows


async def test_postgres_claims_from_two_pools_never_take_the_same_row(
        postgres_url: str, pg_store: PostgresStore) -> None:
    rows = await _commit_digest(pg_store, 40)
    other = PostgresStore(postgres_url)
    await other.open()
    try:
        first, second = await asyncio.gather(pg_store.claim_rows("dkey", NOW),
                                             other.claim_rows("dkey", NOW))
    finally:
        await other.close()
    assert not set(first) & set(second)
    assert sorted(first + second) == sorted(rows)
    assert await pg_store.claim_rows("dkey", NOW) == [], "claimed rows are not claimed again"


async def test_postgres_claim_skips_rows_another_transaction_holds(
        postgres_url: str, pg_store: PostgresStore) -> None:
    rows = await _commit_digest(pg_store, 4)
    held = rows[:2]
    locker = await asyncpg.connect(postgres_url)
    try:
        async with locker.transaction():
            await locker.execute("SELECT id FROM outbox WHERE id = ANY($1::bigint[]) FOR UPDATE",
                                 held)
            # Not waited for: the claim returns at once with the free rows only.
            claimed = await asyncio.wait_for(pg_store.claim_rows("dkey", NOW), timeout=20)
            assert claimed == sorted(set(rows) - set(held))
        assert await pg_store.claim_rows("dkey", NOW) == sorted(held)
    finally:
        await locker.close()


async def test_postgres_migrations_concurrent_opens_apply_each_once(postgres_url: str) -> None:
    stores = [PostgresStore(postgres_url) for _ in range(3)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        assert {await s.schema_version() for s in stores} == {LATEST}
    finally:
        await asyncio.gather(*(s.close() for s in stores))
    again = PostgresStore(postgres_url)
    await again.open()
    await again.close()
    conn = await asyncpg.connect(postgres_url)
    try:
        versions = [r[0] for r in await conn.fetch(
            "SELECT version FROM schema_migrations ORDER BY version")]
    finally:
        await conn.close()
    assert versions == [m.version for m in migrate.available(MIGRATIONS_PACKAGE)]


async def test_postgres_newer_schema_is_refused(postgres_url: str,
                                                pg_store: PostgresStore) -> None:
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute("INSERT INTO schema_migrations VALUES (9999, '9999_future.sql', 0)")
    finally:
        await conn.close()
    with pytest.raises(StoreError, match="version 9999 is newer"):
        await PostgresStore(postgres_url).open()


async def test_postgres_migrate_off_refuses_until_db_migrate(postgres_url: str) -> None:
    store = PostgresStore(postgres_url, migrate=False)
    with pytest.raises(StoreError, match="run `alertbot db migrate` first"):
        await store.open()
    explicit = PostgresStore(postgres_url)
    await explicit.open()
    await explicit.close()
    await store.open()
    try:
        assert await store.schema_version() == LATEST
    finally:
        await store.close()


async def test_postgres_db_now_reads_the_server_clock(pg_store: PostgresStore,
                                                      postgres_url: str) -> None:
    conn = await asyncpg.connect(postgres_url)
    try:
        server = await conn.fetchval("SELECT now()")
        applied = await conn.fetchval("SELECT MAX(applied_at) FROM schema_migrations")
    finally:
        await conn.close()
    clock = await pg_store.db_now()
    assert clock.tzinfo is UTC and clock >= server
    # Migrations were stamped by the same clock, before this test read it.
    assert datetime.fromtimestamp(applied, UTC) <= clock


async def test_postgres_unreachable_store_error_never_shows_password(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    store = PostgresStore("postgresql://bot:hunter2pw@127.0.0.1:1/alertbot")
    with pytest.raises(StoreError) as excinfo:
        await store.open()
    text = str(excinfo.value)
    assert "cannot open database postgresql://bot:***@127.0.0.1:1/alertbot" in text
    assert excinfo.value.__cause__ is not None
    assert "hunter2pw" not in text + repr(store) + caplog.text


async def test_postgres_statement_timeout_is_a_store_error_and_changes_nothing(
        postgres_url: str, pg_store: PostgresStore) -> None:
    await pg_store.set_meta("calls", "1")
    impatient = PostgresStore(postgres_url + "&statement_timeout=200")
    await impatient.open()
    locker = await asyncpg.connect(postgres_url)
    try:
        async with locker.transaction():
            await locker.execute("SELECT pg_advisory_xact_lock(hashtext($1))", "meta\x1fcalls")
            with pytest.raises(StoreError, match="statement timeout") as excinfo:
                await impatient.update_meta("calls", lambda v: str(int(v or 0) + 1))
            assert isinstance(excinfo.value.__cause__, asyncpg.QueryCanceledError)
    finally:
        await locker.close()
        await impatient.close()
    assert await pg_store.get_meta("calls") == "1"


async def test_postgres_lost_connection_is_at_most_one_store_error_then_recovers(
        postgres_url: str, pg_store: PostgresStore) -> None:
    async with pg_store._read() as conn:  # the pool's only connection so far
        pid = await conn.fetchval("SELECT pg_backend_pid()")
    admin = await asyncpg.connect(postgres_url)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    # The pool may notice the dead connection first (no error) or the call may meet it (one
    # StoreError, never a driver exception); either way the next call works.
    errors = []
    for _ in range(2):
        try:
            await pg_store.ping()
        except StoreError as exc:
            errors.append(exc)
    assert len(errors) <= 1
    assert all(e.__cause__ is not None for e in errors)
    await pg_store.ping()


async def test_postgres_backup_refuses_naming_pg_dump(pg_store: PostgresStore) -> None:
    with pytest.raises(StoreError,
                       match=r"pg_dump --format=custom --schema=t_\w+ --file=/tmp/a\.dump 'post"):
        await pg_store.backup("/tmp/a.dump")


async def test_postgres_record_poll_same_series_twice_keeps_the_last(
        pg_store: PostgresStore) -> None:
    from tests.contract.store.helpers import tracked

    await pg_store.record_poll([tracked(value=1.0), tracked(value=-1.0)], [], NOW)
    states = await pg_store.load_states([BTC.token_id])
    assert [s.value for s in states.values()] == [-1.0]


async def test_postgres_transaction_aborted_by_a_real_deadlock_runs_again_and_succeeds(
        postgres_url: str, pg_store: PostgresStore,
        caplog: pytest.LogCaptureFixture) -> None:
    from alertbot.domain.models import Destination
    from tests.support import eventually

    old, new = TG, Destination("telegram", "-1009")
    await pg_store.subscribe(old, BTC.token_id, ALL_KINDS, NOW - timedelta(hours=1))
    first, second = sorted((old, new), key=lambda d: (d.platform, d.chat_id, d.thread_id))
    keys = ["\x1f".join(("destination", d.platform, d.chat_id, d.thread_id))
            for d in (first, second)]
    # rekey locks `first` then `second`; this connection takes them the other way round. It
    # waits far longer before checking for deadlocks, so the store's side is the one aborted.
    other = await asyncpg.connect(postgres_url, server_settings={"deadlock_timeout": "60s"})
    try:
        await other.execute("BEGIN")
        await other.execute("SELECT pg_advisory_xact_lock(hashtext($1))", keys[1])
        caplog.set_level(logging.INFO, logger="alertbot.store.postgres.connection")
        moving = asyncio.create_task(pg_store.rekey(old, new, NOW))

        async def store_waits() -> bool:
            return bool(await other.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND objid = ((hashtext($1)::bigint) & 4294967295)::oid"
                " AND pid <> pg_backend_pid()", keys[1]))

        await eventually(store_waits, what="rekey waiting for the second lock", timeout=20)
        # Closes the cycle; the store's transaction is aborted (40P01), which frees `first`.
        await other.execute("SELECT pg_advisory_xact_lock(hashtext($1))", keys[0])
        await other.execute("COMMIT")
        assert await asyncio.wait_for(moving, 20) == 0
    finally:
        await other.close()
    assert "rekey aborted (DeadlockDetectedError); running it again" in caplog.text
    assert [s.destination for s in await pg_store.subscriptions()] == [new]
