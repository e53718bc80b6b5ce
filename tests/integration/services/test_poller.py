"""Poller: detect -> persist in one transaction; the same path for polls and pushes."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from alertbot.domain.detect import Outcome, Rules
from alertbot.domain.models import ALL_KINDS, ALL_TOKENS, Destination, Kind, Reading, Token
from alertbot.ports.source import Batch, SourceError
from alertbot.ports.store import FencedError
from alertbot.services.poller import Poller
from alertbot.store.sqlite import SqliteStore
from tests.support import ManualClock, eventually

BTC = Token(3375, "BTC", "Bitcoin", "bitcoin")
ETH = Token(3306, "ETH", "Ethereum", "ethereum")
CHAT = Destination("console", "default")
DAY = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass
class ScriptedSource:
    """Serves whatever readings the test sets; can fail."""

    name: str = "scripted"
    readings: list[Reading] = field(default_factory=list)
    error: SourceError | None = None
    fetched: list[tuple[list[int], tuple[Kind, ...]]] = field(default_factory=list)

    async def universe(self) -> list[Token]:
        return [BTC, ETH]

    async def resolve(self, symbol: str) -> list[Token]:
        return [t for t in (BTC, ETH) if t.symbol == symbol.upper()]

    async def fetch(self, token_ids: Sequence[int], kinds: Collection[Kind],
                    now: datetime) -> Batch:
        self.fetched.append((list(token_ids), tuple(kinds)))
        if self.error is not None:
            raise self.error
        return Batch(readings=[r for r in self.readings
                               if r.token.token_id in token_ids and r.kind in kinds],
                     meta={"cursor": str(len(self.fetched))})

    async def close(self) -> None:
        pass


def signal(token: Token, value: float, day: int) -> Reading:
    return Reading(token, Kind.SIGNAL, value, DAY + timedelta(days=day))


def poller_for(store: SqliteStore, source: ScriptedSource, clock: ManualClock,
               woken: list[int] | None = None) -> Poller:
    return Poller(store, source, Rules(), clock, interval=timedelta(seconds=0.05),
                  on_committed=lambda: woken.append(1) if woken is not None else None)


async def test_poller_baseline_then_change_then_dedupe(store: SqliteStore) -> None:
    clock = ManualClock()
    await store.subscribe(CHAT, ALL_TOKENS, ALL_KINDS, clock.at - timedelta(hours=1))
    source = ScriptedSource(readings=[signal(BTC, 1, 0)])
    woken: list[int] = []
    poller = poller_for(store, source, clock, woken)
    first = await poller.poll_once()
    assert first.outcomes[Outcome.BASELINE] == 1 and first.changes == [] and woken == []
    source.readings = [signal(BTC, -1, 1)]
    second = await poller.poll_once()
    assert [c.to_label for c in second.changes] == ["bearish"] and second.outbox_rows == 1
    assert woken == [1]
    again = await poller.poll_once()
    assert again.changes == [] and again.outcomes[Outcome.UNCHANGED] == 1
    assert await store.get_meta("cursor") == "3"


async def test_poller_older_epoch_commits_nothing_and_steps_down(store: SqliteStore) -> None:
    clock = ManualClock()
    await store.subscribe(CHAT, ALL_TOKENS, ALL_KINDS, clock.at - timedelta(hours=1))
    source = ScriptedSource(readings=[signal(BTC, 1, 0)])
    poller = poller_for(store, source, clock)
    fenced: list[int] = []
    old = await store.begin_epoch("a:1", clock.at)
    poller.lead(old, on_fenced=lambda: fenced.append(old))
    await poller.poll_once()
    await store.begin_epoch("b:2", clock.at)  # another replica leads now
    source.readings = [signal(BTC, -1, 1)]
    with pytest.raises(FencedError):
        await poller.poll_once()
    assert fenced == [old]
    (state,) = (await store.load_states([BTC.token_id])).values()
    assert state.value == 1 and await store.recent_changes(BTC.token_id, None, 5) == []
    poller.lead(2)
    assert [c.to_label for c in (await poller.poll_once()).changes] == ["bearish"]


async def test_poller_rereading_unchanged_data_only_refreshes(store: SqliteStore) -> None:
    clock = ManualClock()
    poller = poller_for(store, ScriptedSource(), clock)
    await poller.ingest([signal(BTC, 1, 0)])
    clock.at += timedelta(minutes=5)
    report = await poller.ingest([signal(BTC, 1, 0)])
    assert report.outcomes[Outcome.UNCHANGED] == 1
    (state,) = (await store.load_states([BTC.token_id])).values()
    assert state.updated_at == clock.at and state.source_ts == DAY


async def test_poller_state_survives_a_new_poller_on_the_same_store(store: SqliteStore) -> None:
    await poller_for(store, ScriptedSource(), ManualClock()).ingest([signal(BTC, 1, 0)])
    report = await poller_for(store, ScriptedSource(), ManualClock()).ingest(
        [signal(BTC, -1, 1)])
    assert [c.to_label for c in report.changes] == ["bearish"]


async def test_poller_ingest_replayed_old_readings_are_stale(store: SqliteStore) -> None:
    clock = ManualClock()
    poller = poller_for(store, ScriptedSource(), clock)
    await poller.ingest([signal(BTC, 1, 5)])
    report = await poller.ingest([signal(BTC, -1, 3), signal(BTC, 1, 5)])
    assert report.outcomes[Outcome.STALE] == 1 and report.changes == []
    (state,) = (await store.load_states([BTC.token_id])).values()
    assert state.value == 1 and state.source_ts == DAY + timedelta(days=5)


async def test_poller_ingest_chains_several_readings_of_one_series(store: SqliteStore) -> None:
    poller = poller_for(store, ScriptedSource(), ManualClock())
    await poller.ingest([signal(BTC, 1, 0)])
    report = await poller.ingest([signal(BTC, 1, 3), signal(BTC, -1, 1), signal(BTC, -1, 2)])
    assert [(c.from_value, c.to_value) for c in report.changes] == [(1.0, -1.0), (-1.0, 1.0)]


async def test_poller_polls_only_what_subscriptions_need(store: SqliteStore) -> None:
    clock = ManualClock()
    source = ScriptedSource()
    poller = poller_for(store, source, clock)
    assert (await poller.poll_once()).tokens == 0 and source.fetched == []
    await store.subscribe(CHAT, ETH.token_id, (Kind.SIGNAL, Kind.TM_GRADE), clock.at)
    await poller.poll_once()
    assert source.fetched[-1] == ([ETH.token_id], (Kind.SIGNAL, Kind.TM_GRADE))
    poller.also_watch = lambda: {BTC.token_id}
    await poller.poll_once()
    assert source.fetched[-1] == ([ETH.token_id, BTC.token_id], (Kind.SIGNAL, Kind.TM_GRADE))


async def test_poller_recent_lookups_alone_cost_no_calls(store: SqliteStore) -> None:
    source = ScriptedSource()
    poller = poller_for(store, source, ManualClock())
    poller.also_watch = lambda: {BTC.token_id}
    await poller.poll_once()
    assert source.fetched == []


async def test_poller_failed_cycle_changes_nothing_and_next_runs(store: SqliteStore) -> None:
    clock = ManualClock()
    await store.subscribe(CHAT, BTC.token_id, ALL_KINDS, clock.at)
    source = ScriptedSource(readings=[signal(BTC, 1, 0)],
                            error=SourceError("Token Metrics rejected TOKENMETRICS_API_KEY"))
    poller = poller_for(store, source, clock)
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    await eventually(lambda: len(source.fetched) >= 2, what="two failed fetches")
    assert poller.last_error.startswith("Token Metrics rejected")
    assert await store.load_states([BTC.token_id]) == {}
    source.error = None
    async def stored() -> bool:
        return bool(await store.load_states([BTC.token_id]))

    await eventually(stored, what="states stored after recovery")
    stop.set()
    await task
    assert poller.last_error == "" and poller.last_success == clock.at


async def test_poller_uses_catalog_tokens_for_links(store: SqliteStore) -> None:
    clock = ManualClock()
    await store.subscribe(CHAT, BTC.token_id, ALL_KINDS, clock.at - timedelta(hours=1))
    poller = poller_for(store, ScriptedSource(), clock)
    bare = Token(BTC.token_id, "BTC", "Bitcoin", "")
    await poller.ingest([Reading(bare, Kind.SIGNAL, 1, DAY)], tokens=[BTC])
    report = await poller.ingest([Reading(bare, Kind.SIGNAL, -1, DAY + timedelta(days=1))])
    assert report.changes[0].token.link == "https://app.tokenmetrics.com/bitcoin"


async def test_poller_store_fault_one_line_per_cycle_no_traceback_then_recovers(
        store: SqliteStore, caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    await store.subscribe(CHAT, BTC.token_id, ALL_KINDS, clock.at)
    source = ScriptedSource(readings=[signal(BTC, 1, 0)])
    poller = poller_for(store, source, clock)
    await store._conn.execute("PRAGMA query_only = ON")  # the database refuses writes
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    await eventually(lambda: len(source.fetched) >= 2, what="two cycles on a read-only store")
    assert poller.last_error.startswith("database")
    failures = [r for r in caplog.records if "poll" in r.getMessage()
                and r.levelname in ("WARNING", "ERROR")]
    assert failures and all(r.exc_info is None for r in failures), "a traceback per poll"
    await store._conn.execute("PRAGMA query_only = OFF")

    async def stored() -> bool:
        return bool(await store.load_states([BTC.token_id]))

    await eventually(stored, what="states stored once the database accepts writes")
    stop.set()
    await task


async def test_poller_ingest_future_dated_reading_is_invalid_and_not_stored(
        store: SqliteStore) -> None:
    clock = ManualClock(DAY + timedelta(days=2))
    await store.subscribe(CHAT, ALL_TOKENS, ALL_KINDS, DAY)
    poller = poller_for(store, ScriptedSource(), clock)
    await poller.ingest([signal(BTC, -1, 0)])
    future = Reading(BTC, Kind.SIGNAL, 1.0, datetime(2099, 1, 1, tzinfo=UTC))

    report = await poller.ingest([future])

    assert report.outcomes[Outcome.INVALID] == 1 and report.changes == []
    (state,) = (await store.load_states([BTC.token_id])).values()
    assert state.value == -1 and state.source_ts == DAY
    genuine = await poller.ingest([signal(BTC, 1, 1)])
    assert [c.to_label for c in genuine.changes] == ["bullish"]


async def test_poller_ingest_reading_before_2009_is_invalid(store: SqliteStore) -> None:
    poller = poller_for(store, ScriptedSource(), ManualClock())
    report = await poller.ingest([Reading(BTC, Kind.SIGNAL, 1.0,
                                          datetime(1999, 1, 1, tzinfo=UTC))])
    assert report.outcomes[Outcome.INVALID] == 1
    assert await store.load_states([BTC.token_id]) == {}


# ------------------------------------------------------------------ push queue


async def test_poller_drain_pushed_detects_queued_batches_in_order_once(
        store: SqliteStore) -> None:
    clock = ManualClock()
    await store.subscribe(CHAT, ALL_TOKENS, ALL_KINDS, clock.at - timedelta(hours=1))
    poller = poller_for(store, ScriptedSource(), clock)
    await store.enqueue_pushed([signal(BTC, 1, 0)], [BTC], clock.at)
    flip = await store.enqueue_pushed([signal(BTC, -1, 1)], [BTC], clock.at)
    assert await poller.drain_pushed() == 2
    report = poller.push_report(flip)
    assert report is not None and [c.to_label for c in report.changes] == ["bearish"]
    assert poller.push_report(flip) is None, "collected once"
    assert await poller.drain_pushed() == 0


async def test_poller_drain_pushed_again_after_a_crash_before_finish_alerts_nothing_new(
        store: SqliteStore) -> None:
    clock = ManualClock()
    await store.subscribe(CHAT, ALL_TOKENS, ALL_KINDS, clock.at - timedelta(hours=1))
    await poller_for(store, ScriptedSource(), clock).ingest([signal(BTC, 1, 0)])
    batch = await store.enqueue_pushed([signal(BTC, -1, 1)], [BTC], clock.at)
    # Detection committed, then the process died before marking the batch processed.
    first = poller_for(store, ScriptedSource(), clock)
    [pending] = await store.pending_pushed(10)
    assert len((await first.ingest(pending.readings)).changes) == 1
    restarted = poller_for(store, ScriptedSource(), clock)
    assert await restarted.drain_pushed() == 1
    report = restarted.push_report(batch)
    assert report is not None and report.changes == [] and report.outbox_rows == 0
    assert (await store.stats()).tables["outbox"] == 1


async def test_poller_drain_pushed_batch_failing_detection_does_not_block_later_ones(
        store: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = ManualClock()
    poller = poller_for(store, ScriptedSource(), clock)
    bad = await store.enqueue_pushed([signal(ETH, 1, 0)], [ETH], clock.at)
    good = await store.enqueue_pushed([signal(BTC, 1, 0)], [BTC], clock.at)
    real = poller.ingest

    async def failing_for_eth(readings: Sequence[Reading], **kwargs: object) -> object:
        if readings and readings[0].token == ETH:
            raise RuntimeError("detection bug")
        return await real(readings, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(poller, "ingest", failing_for_eth)
    assert await poller.drain_pushed() == 2
    assert await store.pending_pushed(10) == []
    bad_report, good_report = poller.push_report(bad), poller.push_report(good)
    assert bad_report is not None and sum(bad_report.outcomes.values()) == 0
    assert good_report is not None and good_report.outcomes[Outcome.BASELINE] == 1


async def test_poller_run_pushes_woken_by_a_local_push_drains_at_once(
        store: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    # With the periodic check out of reach, only the wake-up can drain the batch.
    monkeypatch.setattr("alertbot.services.poller.PUSH_CHECK_EVERY", 3600.0)
    clock = ManualClock()
    poller = poller_for(store, ScriptedSource(), clock)
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run_pushes(stop))
    try:
        await asyncio.sleep(0.1)  # let the first (empty) check pass
        batch = await store.enqueue_pushed([signal(BTC, 1, 0)], [BTC], clock.at)
        poller.pushed()

        async def drained() -> bool:
            return await store.pending_pushed(10) == []

        await eventually(drained, what="the woken drain", timeout=10)
        assert poller.push_report(batch) is not None
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
