"""Dispatcher fencing: a leader whose epoch is over, or whose lease may have run out, stops.

Against a real SQLite store: a newer epoch begun in the store (another leader) makes the
old dispatcher's next write fail with FencedError; it sends nothing more, calls its
step-down callback once, and the new leader's run delivers what was left, once.
"""

from __future__ import annotations

import asyncio

from alertbot.ports.clock import SystemClock
from alertbot.ports.store import OutboxState
from alertbot.store.sqlite import SqliteStore
from tests.integration.services.test_dispatcher import (
    CHAT,
    ScriptedNotifier,
    add_changes,
    make_dispatcher,
)
from tests.support import eventually

NOW = SystemClock().now


async def test_dispatcher_newer_epoch_mid_send_stops_and_steps_down_once(
        store: SqliteStore) -> None:
    old = await store.begin_epoch("a:1", NOW())
    notifier = ScriptedNotifier(gate=asyncio.Event(), gated_chat=CHAT.chat_id)
    dispatcher = make_dispatcher(store, notifier)
    fenced: list[int] = []
    dispatcher.lead(old, on_fenced=lambda: fenced.append(old))
    await add_changes(store, 3, epoch=old)
    stop = asyncio.Event()
    running = asyncio.create_task(dispatcher.run(stop))
    await eventually(lambda: len(notifier.attempts) == 1, what="the first send to start")
    await store.begin_epoch("b:2", NOW())  # another replica took over meanwhile
    notifier.gate.set()  # type: ignore[union-attr]
    await eventually(lambda: fenced == [old], what="the step-down callback")
    await asyncio.wait_for(running, 10)
    assert dispatcher.fenced
    assert len(notifier.attempts) == 1, "nothing sent after the refusal"
    # The send made before the refusal is left claimed, for the new leader to send again.
    stats = (await store.outbox_stats()).by_state
    assert stats.get(OutboxState.SENDING) == 1 and OutboxState.SENT not in stats


async def test_dispatcher_fenced_run_sends_nothing_until_led_again(
        store: SqliteStore) -> None:
    await store.begin_epoch("a:1", NOW())
    notifier = ScriptedNotifier()
    dispatcher = make_dispatcher(store, notifier)
    dispatcher.lead(1)
    await store.begin_epoch("b:2", NOW())
    await add_changes(store, 2, epoch=2)  # the new leader's poll
    stop = asyncio.Event()
    await asyncio.wait_for(dispatcher.run(stop), 10)  # recovery is refused: ends at once
    assert dispatcher.fenced and notifier.attempts == []
    # A restart by the supervisor does not send either; it waits for the stop.
    restarted = asyncio.create_task(dispatcher.run(stop))
    await asyncio.sleep(0.2)
    assert not restarted.done() and notifier.attempts == []
    stop.set()
    await asyncio.wait_for(restarted, 10)
    # Leading again under the newest epoch delivers everything, once.
    epoch = await store.begin_epoch("a:1", NOW())
    dispatcher.lead(epoch)
    await dispatcher.run_until_idle()
    assert len(notifier.sent) == 2 and len(set(notifier.attempts)) == 2


async def test_dispatcher_lease_in_doubt_before_send_sends_nothing(store: SqliteStore) -> None:
    epoch = await store.begin_epoch("a:1", NOW())
    notifier = ScriptedNotifier()
    dispatcher = make_dispatcher(store, notifier)
    fenced: list[bool] = []
    dispatcher.lead(epoch, valid=lambda: False, on_fenced=lambda: fenced.append(True))
    await add_changes(store, 1, epoch=epoch)
    stop = asyncio.Event()
    running = asyncio.create_task(dispatcher.run(stop))
    await eventually(lambda: fenced == [True], what="the step-down callback")
    await asyncio.wait_for(running, 10)
    assert notifier.attempts == []
    assert (await store.outbox_stats()).by_state.get(OutboxState.SENDING) == 1
