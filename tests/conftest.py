"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from alertbot.ports.store import Store
from alertbot.store.sqlite import SqliteStore
from tests.support import ENV_PREFIXES, ManualClock

if TYPE_CHECKING:
    from tests.fakes.discord_api import FakeDiscord

# Store backends

StoreFactory = Callable[[Path], AbstractAsyncContextManager[Store]]
"""An open, empty store of one backend for a `with` block; its files go in the given folder."""

TEST_POSTGRES_URL = os.environ.get("ALERTBOT_TEST_POSTGRES_URL",
                                   "postgresql://postgres@127.0.0.1:5432/test")
"""The PostgreSQL server the tests use; each test gets its own schema, dropped afterwards."""
REQUIRE_POSTGRES = os.environ.get("ALERTBOT_TEST_REQUIRE_POSTGRES") == "1"
"""Set by .ci/run: an unreachable server fails the PostgreSQL tests instead of skipping them."""


@asynccontextmanager
async def _sqlite_store(folder: Path) -> AsyncIterator[Store]:
    store = SqliteStore(str(folder / "contract.db"))
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@asynccontextmanager
async def postgres_schema() -> AsyncIterator[str]:
    """A fresh schema on the test server, as a database URL; dropped afterwards.

    Skips the test with a one-line reason when the server is unreachable, unless
    ALERTBOT_TEST_REQUIRE_POSTGRES=1 (then the test fails).
    """
    import asyncpg

    from alertbot.store.urls import redact_url

    try:
        admin = await asyncpg.connect(TEST_POSTGRES_URL, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        reason = (f"PostgreSQL unreachable at {redact_url(TEST_POSTGRES_URL)} ({exc}); set "
                  "ALERTBOT_TEST_POSTGRES_URL to use another server")
        if REQUIRE_POSTGRES:
            pytest.fail(reason + " (ALERTBOT_TEST_REQUIRE_POSTGRES=1)")
        pytest.skip(reason)
    schema = f"t_{uuid.uuid4().hex[:16]}"
    try:
        await admin.execute(f"CREATE SCHEMA {schema}")
        separator = "&" if "?" in TEST_POSTGRES_URL else "?"
        yield f"{TEST_POSTGRES_URL}{separator}search_path={schema}"
    finally:
        await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await admin.close()


@asynccontextmanager
async def _postgres_store(folder: Path) -> AsyncIterator[Store]:
    from alertbot.store.postgres import PostgresStore

    async with postgres_schema() as url:
        store = PostgresStore(url)
        await store.open()
        try:
            yield store
        finally:
            await store.close()


STORE_BACKENDS: dict[str, StoreFactory] = {"sqlite": _sqlite_store,
                                           "postgresql": _postgres_store}
"""Every Store implementation by name; each contract test runs once per entry."""


@pytest.fixture(params=sorted(STORE_BACKENDS))
async def contract_store(request: pytest.FixtureRequest,
                         tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Store]:
    """An open, empty store of each backend, closed afterwards."""
    async with STORE_BACKENDS[request.param](tmp_path_factory.mktemp("store")) as store:
        yield store


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A database URL on a fresh PostgreSQL schema (see `postgres_schema`)."""
    async with postgres_schema() as url:
        yield url


# Shared fixtures


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """An open SqliteStore on a fresh database file, closed after the test."""
    instance = SqliteStore(str(tmp_path / "test.db"))
    await instance.open()
    yield instance
    await instance.close()


@pytest.fixture
def clock() -> ManualClock:
    """A ManualClock at tests.support.DEFAULT_START; set ``at`` or ``advance`` it."""
    return ManualClock()


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    """A running fake Discord with discord.py's URLs pointed at it."""
    # Imported here so tests that never touch Discord do not load discord.py.
    from tests.fakes.discord_api import running_fake_discord

    async with running_fake_discord() as fake:
        yield fake


@pytest.fixture
def cli_workspace(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A clean environment, a database in `tmp_path` and it as the working directory."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ALERTBOT_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("ALERTBOT_HTTP_PORT", "0")
    monkeypatch.chdir(tmp_path)
    return tmp_path
