"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from alertbot.ports.store import Store
from alertbot.store.sqlite import SqliteStore
from tests.support import ENV_PREFIXES, ManualClock

if TYPE_CHECKING:
    from tests.fakes.discord_api import FakeDiscord

# Store backends

StoreFactory = Callable[[Path], Awaitable[Store]]
"""Opens an empty store of one backend; may keep its files under the given folder."""


async def _sqlite_store(folder: Path) -> Store:
    store = SqliteStore(str(folder / "contract.db"))
    await store.open()
    return store


STORE_BACKENDS: dict[str, StoreFactory] = {"sqlite": _sqlite_store}
"""Every Store implementation by name; each contract test runs once per entry."""


@pytest.fixture(params=sorted(STORE_BACKENDS))
async def contract_store(request: pytest.FixtureRequest,
                         tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Store]:
    """An open, empty store of each backend, closed afterwards."""
    store = await STORE_BACKENDS[request.param](tmp_path_factory.mktemp("store"))
    try:
        yield store
    finally:
        await store.close()


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
