"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from alertbot.ports.store import Store
from alertbot.store.sqlite import SqliteStore

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
