"""Lookups: fresh stored readings first, else one cached and shared source call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alertbot.domain.models import Kind, Reading, Token, TrackedState
from alertbot.ports.source import Batch, SourceError
from alertbot.services.lookup import RECENT_LOOKUP_WINDOW, Lookup, LookupFailed
from alertbot.store.sqlite import SqliteStore
from tests.support import ManualClock, eventually

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


@dataclass
class GatedSource:
    """A source whose calls wait for `gate`; `errors` are raised by the next calls, in order."""

    name: str = "gated"
    calls: int = 0
    resolves: int = 0
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    errors: list[BaseException] = field(default_factory=list)

    async def universe(self) -> list[Token]:
        return []

    async def resolve(self, symbol: str) -> list[Token]:
        self.resolves += 1
        await self.gate.wait()
        if self.errors:
            raise self.errors.pop(0)
        return [ETH] if symbol == "ETH" else []

    async def fetch(self, token_ids: Sequence[int], kinds: Collection[Kind],
                    now: datetime) -> Batch:
        self.calls += 1
        await self.gate.wait()
        if self.errors:
            raise self.errors.pop(0)
        return Batch(readings=[Reading(ETH, Kind.TM_GRADE, 70.0, now, "Buy")])

    async def close(self) -> None:
        pass


class ObservedStore(SqliteStore):
    """Counts finished `load_states` calls: a lookup goes straight on to its fetch after one."""

    loads = 0
    resolved = 0

    async def load_states(self, token_ids: Collection[int]) -> Any:
        result = await super().load_states(token_ids)
        self.loads += 1
        return result

    async def tokens_by_symbol(self, symbol: str) -> list[Token]:
        result = await super().tokens_by_symbol(symbol)
        self.resolved += 1
        return result


@pytest.fixture
async def observed(tmp_path: Path) -> AsyncIterator[ObservedStore]:
    store = ObservedStore(str(tmp_path / "observed.db"))
    await store.open()
    yield store
    await store.close()


def gated_lookup(store: SqliteStore, source: GatedSource) -> Lookup:
    return Lookup(store, source, ManualClock(), fresh_for=timedelta(minutes=10),
                  cache_ttl=timedelta(minutes=5))


async def _waiting(store: ObservedStore, callers: int, *, resolve: bool = False) -> None:
    """Until `callers` lookups have gone past the store to the (shared) source call."""
    if resolve:
        await eventually(lambda: store.resolved >= callers, what=f"{callers} resolves")
    else:
        await eventually(lambda: store.loads >= callers, what=f"{callers} lookups")
    await asyncio.sleep(0)


async def test_lookup_snapshot_first_caller_cancelled_second_still_answered(
    observed: ObservedStore,
) -> None:
    source = GatedSource()
    lookup = gated_lookup(observed, source)
    first = asyncio.create_task(lookup.snapshot(ETH, [Kind.TM_GRADE]))
    second = asyncio.create_task(lookup.snapshot(ETH, [Kind.TM_GRADE]))
    await _waiting(observed, 2)
    first.cancel()
    await asyncio.wait({first})
    source.gate.set()
    snapshot = await asyncio.wait_for(second, 5)
    assert snapshot.entries[Kind.TM_GRADE].value == 70.0
    assert first.cancelled()


async def test_lookup_snapshot_first_caller_unexpected_error_shared_then_retried(
    observed: ObservedStore,
) -> None:
    source = GatedSource(errors=[RuntimeError("boom")])
    lookup = gated_lookup(observed, source)
    first = asyncio.create_task(lookup.snapshot(ETH, [Kind.TM_GRADE]))
    second = asyncio.create_task(lookup.snapshot(ETH, [Kind.TM_GRADE]))
    await _waiting(observed, 2)
    source.gate.set()
    results = await asyncio.wait_for(asyncio.gather(first, second, return_exceptions=True), 5)
    assert [type(r) for r in results] == [RuntimeError, RuntimeError] and source.calls == 1
    later = await lookup.snapshot(ETH, [Kind.TM_GRADE])
    assert later.entries[Kind.TM_GRADE].value == 70.0 and source.calls == 2


async def test_lookup_resolve_first_caller_unexpected_error_second_does_not_hang(
    observed: ObservedStore,
) -> None:
    source = GatedSource(errors=[RuntimeError("boom")])
    lookup = gated_lookup(observed, source)
    first = asyncio.create_task(lookup.resolve("ETH"))
    second = asyncio.create_task(lookup.resolve("ETH"))
    await _waiting(observed, 2, resolve=True)
    source.gate.set()
    results = await asyncio.wait_for(asyncio.gather(first, second, return_exceptions=True), 5)
    assert [type(r) for r in results] == [RuntimeError, RuntimeError] and source.resolves == 1
    assert await lookup.resolve("ETH") == ETH and source.resolves == 2


async def test_lookup_resolve_first_caller_cancelled_second_still_answered(
    observed: ObservedStore,
) -> None:
    source = GatedSource()
    lookup = gated_lookup(observed, source)
    first = asyncio.create_task(lookup.resolve("ETH"))
    second = asyncio.create_task(lookup.resolve("ETH"))
    await _waiting(observed, 2, resolve=True)
    first.cancel()
    await asyncio.wait({first})
    source.gate.set()
    assert await asyncio.wait_for(second, 5) == ETH
