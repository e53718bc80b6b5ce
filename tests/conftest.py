"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from alertbot.ports.store import Store
from alertbot.store.sqlite import SqliteStore
from tests.pg_support import schema_url, temporary_schema
from tests.support import ENV_PREFIXES, ManualClock

if TYPE_CHECKING:
    from tests.fakes.discord_api import FakeDiscord

# Store backends

StoreFactory = Callable[[Path], AbstractAsyncContextManager[Store]]
"""An open, empty store of one backend for a `with` block; its files go in the given folder."""



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
    async with temporary_schema() as schema:
        yield schema_url(schema)


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
