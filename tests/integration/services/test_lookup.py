"""Lookups: fresh stored readings first, else one cached and shared source call."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest

from alertbot.domain.models import Kind, Reading, Token, TrackedState
from alertbot.ports.source import Batch, SourceError
from alertbot.services.lookup import RECENT_LOOKUP_WINDOW, Lookup, LookupFailed
from alertbot.store.sqlite import SqliteStore
from tests.support import ManualClock

BTC = Token(3375, "BTC", "Bitcoin", "bitcoin")
OTHER_BTC = Token(9999, "BTC", "Osmosis allBTC", "")
ETH = Token(3306, "ETH", "Ethereum", "ethereum")


@dataclass
class CountingSource:
    name: str = "counting"
    calls: int = 0
    resolves: int = 0
    delay: float = 0.0
    fail: bool = False
    catalog: list[Token] = field(default_factory=lambda: [ETH])

    async def universe(self) -> list[Token]:
        return []

    async def resolve(self, symbol: str) -> list[Token]:
        self.resolves += 1
        await asyncio.sleep(self.delay)
        return [t for t in self.catalog if t.symbol == symbol]

    async def fetch(self, token_ids: Sequence[int], kinds: Collection[Kind],
                    now: datetime) -> Batch:
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.fail:
            raise SourceError("upstream down")
        readings = [Reading(ETH, Kind.TM_GRADE, 70.0, now, "Buy")] if Kind.TM_GRADE in kinds \
            else []
        return Batch(readings=[r for r in readings if r.token.token_id in token_ids])

    async def close(self) -> None:
        pass


def make(store: SqliteStore, source: CountingSource, clock: ManualClock) -> Lookup:
    return Lookup(store, source, clock, fresh_for=timedelta(minutes=10),
                  cache_ttl=timedelta(minutes=5))


async def test_lookup_resolve_symbol_id_ambiguity_and_unknown(store: SqliteStore) -> None:
    clock = ManualClock()
    await store.upsert_tokens([BTC, OTHER_BTC], clock.at)
    lookup = make(store, CountingSource(), clock)
    with pytest.raises(LookupFailed, match=r"BTC matches several tokens: Bitcoin \(id 3375\)"):
        await lookup.resolve("btc")
    assert await lookup.resolve("3375") == BTC
    assert await lookup.resolve("$ETH") == ETH  # resolved through the source, then stored
    assert await store.tokens_by_symbol("ETH") == [ETH]
    with pytest.raises(LookupFailed, match="Unknown symbol NOPE"):
        await lookup.resolve("nope")
    with pytest.raises(LookupFailed, match="not a token symbol"):
        await lookup.resolve("<script>")


async def test_lookup_fresh_stored_readings_cost_no_call(store: SqliteStore) -> None:
    clock = ManualClock()
    source = CountingSource()
    await store.record_poll([TrackedState(ETH.token_id, Kind.TM_GRADE, 55.0, clock.at)], [],
                            clock.at)
    lookup = make(store, source, clock)
    snapshot = await lookup.snapshot(ETH, [Kind.TM_GRADE])
    assert snapshot.entries[Kind.TM_GRADE].value == 55.0 and source.calls == 0
    clock.at += timedelta(minutes=11)
    snapshot = await lookup.snapshot(ETH, [Kind.TM_GRADE])
    assert snapshot.entries[Kind.TM_GRADE].value == 70.0 and source.calls == 1


async def test_lookup_cache_shares_concurrent_calls_and_expires(store: SqliteStore) -> None:
    clock = ManualClock()
    source = CountingSource(delay=0.05)
    lookup = make(store, source, clock)
    results = await asyncio.gather(*(lookup.snapshot(ETH, [Kind.TM_GRADE]) for _ in range(10)))
    assert source.calls == 1
    assert all(r.entries[Kind.TM_GRADE].value == 70.0 for r in results)
    await lookup.snapshot(ETH, [Kind.TM_GRADE])
    assert source.calls == 1
    clock.at += timedelta(minutes=6)
    await lookup.snapshot(ETH, [Kind.TM_GRADE])
    assert source.calls == 2


async def test_lookup_source_failure_reports_missing_not_error(store: SqliteStore) -> None:
    clock = ManualClock()
    source = CountingSource(fail=True)
    snapshot = await make(store, source, clock).snapshot(ETH, [Kind.SIGNAL, Kind.TM_GRADE])
    assert snapshot.entries == {} and snapshot.missing == (Kind.SIGNAL, Kind.TM_GRADE)


async def test_lookup_remembers_recent_tokens_for_the_poller(store: SqliteStore) -> None:
    clock = ManualClock()
    lookup = make(store, CountingSource(), clock)
    await lookup.snapshot(ETH, [Kind.TM_GRADE])
    assert lookup.recent_tokens() == {ETH.token_id}
    clock.at += RECENT_LOOKUP_WINDOW + timedelta(seconds=1)
    assert lookup.recent_tokens() == set()
