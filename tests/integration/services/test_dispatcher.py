"""Dispatcher against a real SQLite store and a scriptable notifier at the Notifier seam."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from alertbot.domain.models import (
    ALL_KINDS,
    Change,
    Destination,
    Direction,
    Kind,
    Message,
    Policy,
    Token,
    make_change_id,
)
from alertbot.ports.clock import SystemClock
from alertbot.ports.notifier import Delivered, DeliveryError, Limit, Target
from alertbot.services.dispatcher import (
    DeliveryRetry,
    Dispatcher,
    DispatchObserver,
    digest_key,
    message_key,
)
from alertbot.services.pacing import Pacer
from alertbot.store.sqlite import SqliteStore
from tests.support import eventually

CHAT = Destination("fake", "-100")
OTHER = Destination("fake", "-200")
TOKENS = [Token(i, f"T{i}", f"Token {i}") for i in range(1, 30)]
Script = Callable[[Target, str], DeliveryError | None]


@dataclass
class Sent:
    destination: Destination
    key: str
    message: Message
    silent: bool


@dataclass
class ScriptedNotifier:
    """Records sends; `script` may return an error to raise for a given send."""

    platform: str = "fake"
    script: Script | None = None
    sent: list[Sent] = field(default_factory=list)
    attempts: list[str] = field(default_factory=list)
    gate: asyncio.Event | None = None
    gated_chat: str | None = None

    def limits(self, destination: Destination) -> Sequence[tuple[Limit, str]]:
        return ()

    async def send(self, target: Target, message: Message, *, key: str,
                   silent: bool) -> Delivered:
        self.attempts.append(key)
        if self.gate is not None and target.destination.chat_id == self.gated_chat:
            await self.gate.wait()
        if self.script is not None:
            error = self.script(target, key)
            if error is not None:
                raise error
        self.sent.append(Sent(target.destination, key, message, silent))
        return Delivered(message_id=f"m{len(self.sent)}")

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass


class Recorder(DispatchObserver):
    def __init__(self) -> None:
        self.outcomes: list[str] = []
        self.paused_reasons: list[str] = []

    def failed(self, destination: Destination, outcome: str) -> None:
        self.outcomes.append(outcome)

    def paused(self, destination: Destination, reason: str) -> None:
        self.paused_reasons.append(reason)


FAST_RETRY = DeliveryRetry(base=0.01, cap=0.05, max_attempts=3)


def make_dispatcher(store: SqliteStore, notifier: ScriptedNotifier,
                    observer: DispatchObserver | None = None,
                    retry: DeliveryRetry = FAST_RETRY) -> Dispatcher:
    return Dispatcher(store, {"fake": notifier}, SystemClock(), pacer=Pacer(), retry=retry,
                      observer=observer, rng=random.Random(1), drain_timeout=2.0)


async def add_changes(store: SqliteStore, count: int, *, start: int = 0,
                      subscribe: Sequence[Destination] = (CHAT,),
                      policy: Policy | None = None, epoch: int = 0) -> list[Change]:
    now = datetime.now(UTC)
    for destination in subscribe:
        if policy is not None:
            await store.set_policy(destination, policy, now)
        await store.subscribe(destination, 0, ALL_KINDS, now - timedelta(hours=1))
    changes = []
    for i in range(start, start + count):
        token = TOKENS[i % len(TOKENS)]
        source = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=i)
        changes.append(Change(make_change_id(token.token_id, Kind.SIGNAL, -1, 1, source), token,
                              Kind.SIGNAL, -1.0, 1.0, Direction.UP, source,
                              now + timedelta(microseconds=i), "bearish", "bullish", "flip"))
    await store.record_poll([], changes, now, epoch=epoch)
    return changes


async def test_dispatcher_delivers_each_alert_once_in_order(store: SqliteStore) -> None:
    changes = await add_changes(store, 3)
    notifier = ScriptedNotifier()
    await make_dispatcher(store, notifier).run_until_idle(10)
    assert [s.key for s in notifier.sent] == [message_key(c.change_id, CHAT) for c in changes]
    assert all(not s.message.is_digest for s in notifier.sent)
    assert (await store.outbox_stats()).by_state == {"sent": 3}
    await make_dispatcher(store, notifier).run_until_idle(10)
    assert len(notifier.sent) == 3


async def test_dispatcher_over_budget_sends_one_digest(store: SqliteStore) -> None:
    changes = await add_changes(store, 5, policy=Policy(max_alerts=2))
    notifier = ScriptedNotifier()
    await make_dispatcher(store, notifier).run_until_idle(10)
    single, digest = notifier.sent
    assert single.key == message_key(changes[0].change_id, CHAT)
    assert digest.message.is_digest and len(digest.message.changes) == 4
    assert digest.key == digest_key([message_key(c.change_id, CHAT) for c in changes[1:]])
    more = await add_changes(store, 2, start=10, policy=Policy(max_alerts=2))
    await make_dispatcher(store, notifier).run_until_idle(10)
    assert len(notifier.sent) == 2
    held = await store.due_alerts(CHAT, datetime.now(UTC) + timedelta(hours=2))
    assert sorted(a.change.change_id for a in held) == sorted(c.change_id for c in more)
    reasons = {d.reason for d in await store.recent_decisions(CHAT, 20)}
    assert {"sent", "digest", "held_rate"} <= reasons


async def test_dispatcher_transient_failure_retries_then_delivers(store: SqliteStore) -> None:
    await add_changes(store, 1)
    failures = iter([DeliveryError("HTTP 502", retryable=True)])
    notifier = ScriptedNotifier(script=lambda t, k: next(failures, None))
    observer = Recorder()
    await make_dispatcher(store, notifier, observer).run_until_idle(10)
    assert len(notifier.sent) == 1 and len(notifier.attempts) == 2
    assert observer.outcomes == ["retry"]
    assert [d.reason for d in await store.recent_decisions(CHAT, 5)][:2] == ["retry", "sent"]


async def test_dispatcher_retries_are_bounded_then_dead_letter(store: SqliteStore) -> None:
    await add_changes(store, 1)
    notifier = ScriptedNotifier(script=lambda t, k: DeliveryError("timeout", retryable=True))
    observer = Recorder()
    await make_dispatcher(store, notifier, observer).run_until_idle(10)
    assert notifier.sent == [] and len(notifier.attempts) == FAST_RETRY.max_attempts
    assert observer.outcomes == ["retry", "retry", "dead"]
    assert (await store.outbox_stats()).by_state == {"dead": 1}


async def test_dispatcher_permanent_failure_dead_letters_at_once(store: SqliteStore) -> None:
    await add_changes(store, 1)
    notifier = ScriptedNotifier(script=lambda t, k: DeliveryError("can't parse entities"))
    await make_dispatcher(store, notifier).run_until_idle(10)
    assert len(notifier.attempts) == 1
    assert (await store.outbox_stats()).by_state == {"dead": 1}
    (decision, *_) = await store.recent_decisions(CHAT, 5)
    assert decision.reason == "dead" and "parse" in decision.detail


async def test_dispatcher_rate_limit_is_honoured_not_counted(store: SqliteStore) -> None:
    await add_changes(store, 1)
    limits = iter([DeliveryError("429", rate_limited=True, retry_after=0.2)] * 4)
    notifier = ScriptedNotifier(script=lambda t, k: next(limits, None))
    observer = Recorder()
    await make_dispatcher(store, notifier, observer).run_until_idle(10)
    # More 429s than max_attempts, yet delivered: a 429 is not a failure of the alert.
    assert len(notifier.sent) == 1 and observer.outcomes == ["rate_limited"] * 4
    reasons = [d.reason for d in await store.recent_decisions(CHAT, 10)]
    assert reasons.count("rate_limited") == 4 and "retry" not in reasons
    assert (await store.outbox_stats()).by_state == {"sent": 1}


async def test_dispatcher_destination_gone_pauses_and_dead_letters(store: SqliteStore) -> None:
    await add_changes(store, 3, subscribe=(CHAT, OTHER))
    notifier = ScriptedNotifier(script=lambda t, k: DeliveryError(
        "bot was blocked by the user", destination_gone=True)
        if t.destination == CHAT else None)
    observer = Recorder()
    await make_dispatcher(store, notifier, observer).run_until_idle(10)
    assert [s.destination for s in notifier.sent] == [OTHER] * 3
    assert observer.paused_reasons == ["bot was blocked by the user"]
    info = await store.destination(CHAT)
    assert info is not None and info.paused_reason == "bot was blocked by the user"
    assert (await store.subscriptions(CHAT))[0].paused_reason
    await add_changes(store, 1, start=20, subscribe=())
    assert await store.due_destinations(datetime.now(UTC), 10, ["fake"]) == [OTHER]
    assert any(a.action == "pause" for a in await store.recent_audit(5))


async def test_dispatcher_rekey_moves_destination_and_resends(store: SqliteStore) -> None:
    await add_changes(store, 2)
    new_id = "-100999"
    notifier = ScriptedNotifier(script=lambda t, k: DeliveryError(
        "group upgraded", rekey_to=new_id) if t.destination == CHAT else None)
    await make_dispatcher(store, notifier).run_until_idle(10)
    moved = Destination("fake", new_id)
    assert [s.destination for s in notifier.sent] == [moved, moved]
    assert await store.subscriptions(CHAT) == []
    assert len(await store.subscriptions(moved)) == 1
    assert notifier.sent[0].key == message_key(
        (await store.recent_changes(TOKENS[0].token_id, None, 1))[0].change_id, moved)


async def test_dispatcher_crash_recovery_resends_in_flight_with_same_key(
        store: SqliteStore) -> None:
    (change,) = await add_changes(store, 1)
    notifier = ScriptedNotifier(gate=asyncio.Event(), gated_chat=CHAT.chat_id)
    dispatcher = make_dispatcher(store, notifier)
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    await eventually(lambda: bool(notifier.attempts), what="the gated send to start")
    task.cancel()  # a crash mid-send: the row stays in `sending`
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await store.outbox_stats()).by_state == {"sending": 1}
    restarted = ScriptedNotifier()
    await make_dispatcher(store, restarted).run_until_idle(10)
    assert [s.key for s in restarted.sent] == [message_key(change.change_id, CHAT)]
    assert notifier.attempts == [restarted.sent[0].key]


async def test_dispatcher_slow_destination_does_not_block_others(store: SqliteStore) -> None:
    await add_changes(store, 2, subscribe=(CHAT, OTHER))
    gate = asyncio.Event()
    notifier = ScriptedNotifier(gate=gate, gated_chat=CHAT.chat_id)
    stop = asyncio.Event()
    task = asyncio.create_task(make_dispatcher(store, notifier).run(stop))
    await eventually(lambda: len(notifier.sent) >= 2, what="two sends to the open chat")
    assert [s.destination for s in notifier.sent] == [OTHER, OTHER]
    gate.set()
    await eventually(lambda: len(notifier.sent) >= 4, what="all four sends")
    stop.set()
    await task
    assert sorted(s.destination.chat_id for s in notifier.sent) == ["-100", "-100", "-200",
                                                                   "-200"]


async def test_dispatcher_shutdown_lets_in_flight_send_finish(store: SqliteStore) -> None:
    await add_changes(store, 1)
    gate = asyncio.Event()
    notifier = ScriptedNotifier(gate=gate, gated_chat=CHAT.chat_id)
    stop = asyncio.Event()
    task = asyncio.create_task(make_dispatcher(store, notifier).run(stop))
    await eventually(lambda: bool(notifier.attempts), what="the gated send to start")
    stop.set()
    await asyncio.sleep(0.05)
    gate.set()
    await asyncio.wait_for(task, 5)
    assert len(notifier.sent) == 1
    assert (await store.outbox_stats()).by_state == {"sent": 1}


async def test_dispatcher_shutdown_send_slower_than_drain_finishes_not_cut_off(
        store: SqliteStore, caplog: pytest.LogCaptureFixture) -> None:
    changes = await add_changes(store, 3, subscribe=(CHAT, OTHER))
    slow_keys = {message_key(c.change_id, CHAT) for c in changes}
    gate = asyncio.Event()
    notifier = ScriptedNotifier(gate=gate, gated_chat=CHAT.chat_id)
    dispatcher = Dispatcher(store, {"fake": notifier}, SystemClock(), pacer=Pacer(),
                            retry=FAST_RETRY, rng=random.Random(1), drain_timeout=0.05,
                            send_timeout=30.0)
    stop = asyncio.Event()
    caplog.set_level("INFO", logger="alertbot.services.dispatcher")
    task = asyncio.create_task(dispatcher.run(stop))
    await eventually(lambda: bool(slow_keys & set(notifier.attempts)),
                     what="a send to the slow chat in flight")
    stop.set()
    # Past the drain: a cut-off send here would be repeated after the restart.
    await eventually(lambda: "sends in flight finish" in caplog.text,
                     what="the drain to pass with the send still in flight")
    gate.set()
    await asyncio.wait_for(task, 5)
    slow = [s for s in notifier.sent if s.destination == CHAT]
    assert len(slow) == 1
    # A lane still waiting for a pacing slot at the stop keeps its claimed row `sending` (it
    # sent nothing); the restart recovers and sends it. The finished slow send is not repeated.
    restarted = ScriptedNotifier()
    await make_dispatcher(store, restarted).run_until_idle(10)
    assert slow[0].key not in [s.key for s in restarted.sent]
    stats = (await store.outbox_stats()).by_state
    assert set(stats) == {"sent"}, stats
    delivered = [s.key for s in notifier.sent + restarted.sent]
    assert len(delivered) == len(set(delivered)) == 6


async def test_dispatcher_notifier_bug_is_retried_not_lost(store: SqliteStore) -> None:
    await add_changes(store, 1)
    calls = iter([ZeroDivisionError("boom")])

    def script(target: Target, key: str) -> DeliveryError | None:
        error = next(calls, None)
        if error is not None:
            raise error
        return None

    notifier = ScriptedNotifier(script=script)
    await make_dispatcher(store, notifier).run_until_idle(10)
    assert len(notifier.sent) == 1 and len(notifier.attempts) == 2


async def test_dispatcher_silent_mode_reaches_the_notifier(store: SqliteStore) -> None:
    from alertbot.domain.models import Mode

    await add_changes(store, 1, policy=Policy(modes={Kind.SIGNAL: Mode.SILENT}))
    notifier = ScriptedNotifier()
    await make_dispatcher(store, notifier).run_until_idle(10)
    assert [s.silent for s in notifier.sent] == [True]


async def test_dispatcher_unconfigured_platform_waits(store: SqliteStore) -> None:
    other_platform = Destination("elsewhere", "1")
    await add_changes(store, 1, subscribe=(other_platform,))
    notifier = ScriptedNotifier()
    await make_dispatcher(store, notifier).run_until_idle(2)
    assert notifier.sent == []
    assert (await store.outbox_stats()).by_state == {"pending": 1}


class CancelTurnsIntoError(ScriptedNotifier):
    """A start() whose client library turns its cancellation into an ordinary error."""

    def __init__(self) -> None:
        super().__init__()
        self.starting = asyncio.Event()

    async def start(self) -> None:
        self.starting.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            # What aiohttp does when the connection under a cancelled request is torn down.
            raise ConnectionResetError("connection lost") from None


async def test_dispatcher_cancelled_while_notifier_starts_is_cancelled(
    store: SqliteStore
) -> None:
    notifier = CancelTurnsIntoError()
    task = asyncio.create_task(make_dispatcher(store, notifier).run(asyncio.Event()))
    await asyncio.wait_for(notifier.starting.wait(), 5)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5)
    try:
        assert task in done and task.cancelled(), "the dispatcher swallowed its cancellation"
    finally:
        task.cancel()
        await asyncio.wait({task})


async def test_dispatcher_run_again_after_a_run_ended_delivers(store: SqliteStore) -> None:
    notifier = ScriptedNotifier()
    dispatcher = make_dispatcher(store, notifier)
    stopped = asyncio.Event()
    stopped.set()
    await dispatcher.run(stopped)  # what a failed run leaves behind: a drained dispatcher
    await add_changes(store, 2)
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        await eventually(lambda: len(notifier.sent) == 2, what="both alerts after the restart")
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


class CallLog:
    """The store with the name of every call the dispatcher makes recorded, in order."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return attr(*args, **kwargs)
        return call


async def test_dispatcher_lane_reaches_the_send_in_two_store_calls(store: SqliteStore) -> None:
    # Each store call is a round trip the alert waits for (on SQLite, to aiosqlite's thread):
    # the lane's first reads are one call, the decision, the read of what is due and the
    # claim are one transaction, and a lane whose sends all went through makes no pass that
    # can only find nothing.
    log = CallLog(store)

    def sending(target: Target, key: str) -> None:
        log.calls.append("send")

    await add_changes(store, 1)
    dispatcher = Dispatcher(cast(SqliteStore, log), {"fake": ScriptedNotifier(script=sending)},
                            SystemClock(), pacer=Pacer(), rng=random.Random(1))
    await dispatcher.run_until_idle(10)
    lane = [c for c in log.calls if c not in ("recover", "due_destinations", "next_due")]
    assert lane == ["delivery_view", "decide", "send", "mark_sent", "due_alerts"]
    assert (await store.outbox_stats()).by_state == {"sent": 1}
