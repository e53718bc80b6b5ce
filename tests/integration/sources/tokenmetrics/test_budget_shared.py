"""The Token Metrics call counter is shared through the store by every process using it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alertbot.ports.source import SourceError
from alertbot.sources.tokenmetrics.quota import Usage, plan_quota
from alertbot.sources.tokenmetrics.source import USAGE_KEY, CallBudget
from alertbot.store.sqlite import SqliteStore

NOW = datetime(2026, 11, 15, 12, tzinfo=UTC)


@pytest.fixture
async def two_processes(tmp_path: Path) -> AsyncIterator[tuple[SqliteStore, SqliteStore]]:
    """Two connections to one database file, as the running bot and a CLI command have."""
    first = SqliteStore(str(tmp_path / "shared.db"))
    await first.open()
    second = SqliteStore(str(tmp_path / "shared.db"))
    await second.open()
    yield first, second
    await second.close()
    await first.close()


async def test_call_budget_two_processes_count_every_call(
    two_processes: tuple[SqliteStore, SqliteStore],
) -> None:
    plan = plan_quota(100_000, 4, timedelta(minutes=5))
    bot, cli = (CallBudget(store, plan) for store in two_processes)
    await asyncio.gather(*(bot.admit("lookup", 1, NOW) for _ in range(20)),
                         *(cli.admit("lookup", 1, NOW) for _ in range(20)),
                         *(bot.settle("lookup", 2, NOW) for _ in range(5)),
                         *(cli.settle("lookup", 2, NOW) for _ in range(5)))
    stored = Usage.decode(await two_processes[0].get_meta(USAGE_KEY), NOW)
    assert stored == Usage("2026-11", lookup=60)


async def test_call_budget_two_processes_never_overspend_the_reserve(
    two_processes: tuple[SqliteStore, SqliteStore],
) -> None:
    plan = plan_quota(100, 4, timedelta(minutes=5))  # 10 calls kept for lookups
    bot, cli = (CallBudget(store, plan) for store in two_processes)
    results = await asyncio.gather(*(bot.admit("lookup", 1, NOW) for _ in range(8)),
                                   *(cli.admit("lookup", 1, NOW) for _ in range(8)),
                                   return_exceptions=True)
    assert sum(r is None for r in results) == plan.reserve == 10
    assert all(isinstance(r, SourceError) for r in results if r is not None)
    stored = Usage.decode(await two_processes[1].get_meta(USAGE_KEY), NOW)
    assert stored.lookup == 10
