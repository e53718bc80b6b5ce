"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from alertbot.store.sqlite import SqliteStore
from tests.support import ManualClock

if TYPE_CHECKING:
    from tests.fakes.discord_api import FakeDiscord

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
