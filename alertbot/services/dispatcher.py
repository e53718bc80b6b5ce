"""Outbox -> platforms: throttle, pace, send, record; retry, dead-letter, pause, re-key.

One lane (task) per destination keeps its alerts in order and lets a slow or dead chat
block nobody else. A row is committed to a message key before it is sent, so a crash
re-sends exactly the same message (Discord bot messages are deduped by nonce, outbound
webhooks carry it as Idempotency-Key); what each platform makes of a repeat is in its
notifier's docstring. A clean stop starts no new send and lets the ones in flight finish
(`stop_bound`), so a planned restart repeats nothing.

A store fault (StoreError: locked, full, read-only) pauses delivery instead of ending it: the
loop and the lanes back off with a capped exponential delay, log one line (then at most one a
minute), and resume when the store answers again. The outcome of a send already made is
retried until it is recorded, so a fault never loses or repeats an alert.

Fencing: every outbox write carries the leadership epoch given to `lead`. When the store
refuses it (FencedError: a newer leader began) or the lease is no longer certainly held, the
dispatcher starts no further send, records nothing more and calls `on_fenced`, so the process
steps down; a send already made is left claimed for the new leader's recovery to send again
under the same key.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from alertbot.domain import throttle
from alertbot.domain.models import (
    Change,
    ChartImage,
    Destination,
    Kind,
    Message,
    Policy,
    Reason,
)
from alertbot.domain.parsing import format_duration
from alertbot.domain.render import render
from alertbot.observability.logs import correlation_id
from alertbot.ports.clock import Clock
from alertbot.ports.lifecycle import reraise_if_cancelling
from alertbot.ports.notifier import DeliveryError, Notifier, Target
from alertbot.ports.observers import DispatchObserver
from alertbot.ports.store import Committed, DispatchStore, FencedError, PlanKeys, StoreError
from alertbot.services.pacing import Pacer

log = logging.getLogger(__name__)

ChartSource = Callable[[Change], Awaitable[ChartImage]]
CHART_KINDS = frozenset({Kind.TM_GRADE, Kind.FUNDAMENTAL})
"""Alerts that carry a chart when their destination has charts on."""
CHART_TIMEOUT = 10.0
"""Seconds a chart may take (history read and drawing) before the alert goes as text."""

KEY_LENGTH = 24
"""Idempotency keys fit Discord's 25-character nonce."""
PACER_PRUNE_EVERY = 300.0
"""Seconds between dropping idle pacing buckets; longer than any platform window."""
SEND_TIMEOUT = 30.0
"""Seconds one send may take before it is given up and retried."""
DRAIN_TIMEOUT = 10.0
"""Seconds a stop gives lanes that are not sending (waiting for a slot, the store)."""
RECORD_GRACE = 5.0
"""Seconds a send that finished at the send timeout gets to record its outcome."""


def stop_bound(drain_timeout: float = DRAIN_TIMEOUT, send_timeout: float = SEND_TIMEOUT) -> float:
    """Longest a clean stop of the dispatcher takes: sends in flight finish or time out.

    No send starts once the stop begins, and each one in flight ends within the send timeout,
    so a planned restart neither cuts a send off (which would repeat it) nor waits longer.
    Service managers must allow more than this before they kill the process.
    """
    return max(drain_timeout, send_timeout + RECORD_GRACE)
IDLE_POLL = 1.0
"""Longest wait between looks at the outbox when nothing wakes the dispatcher."""
STORE_LOG_EVERY = 60.0
"""Seconds between repeated log lines while the store stays unavailable."""

T = TypeVar("T")


def _b32(raw: str) -> str:
    digest = hashlib.sha256(raw.encode()).digest()
    return base64.b32encode(digest).decode().lower()


def message_key(change_id: str, destination: Destination) -> str:
    """Deterministic idempotency key of one change sent to one destination."""
    raw = f"{change_id}|{destination.platform}|{destination.chat_id}|{destination.thread_id}"
    return "a" + _b32(raw)[: KEY_LENGTH - 1]


def digest_key(keys: Sequence[str]) -> str:
    """Deterministic idempotency key of a digest made of these rows."""
    return "d" + _b32("|".join(sorted(keys)))[: KEY_LENGTH - 1]


@dataclass(frozen=True, slots=True)
class DeliveryRetry:
    """Exponential backoff with full jitter, bounded by attempts and age."""

    base: float = 2.0
    cap: float = 900.0
    max_attempts: int = 10
    max_age: timedelta = timedelta(hours=24)

    def delay(self, attempts: int, rng: random.Random) -> float:
        """Seconds before attempt number `attempts + 1`."""
        return rng.uniform(0, min(self.cap, self.base * (2 ** min(attempts, 30))))

    def exhausted(self, attempts: int, first_created: datetime, now: datetime) -> bool:
        """Whether to give up after `attempts` failures."""
        return attempts >= self.max_attempts or now - first_created >= self.max_age


@dataclass(frozen=True, slots=True)
class StoreBackoff:
    """Capped exponential pause of delivery while the store fails."""

    base: float = 0.5
    cap: float = 15.0

    def delay(self, failures: int) -> float:
        """Seconds to pause after `failures` consecutive failures (at least one)."""
        return float(min(self.cap, self.base * 2.0 ** min(max(failures - 1, 0), 30)))


class _StoreFault:
    """Shared by the loop and every lane: one backoff, one log line, one recovery line."""

    def __init__(self, backoff: StoreBackoff) -> None:
        self._backoff = backoff
        self.failures = 0
        self.last: StoreError | None = None
        self._until = 0.0
        self._since = 0.0
        self._logged: float | None = None

    def failed(self, exc: StoreError, now: float) -> float:
        """Record a failure; returns how long to pause from `now`."""
        self.last = exc
        if now >= self._until:
            # Failures of lanes already waiting in this pause do not lengthen it.
            self.failures += 1
            if self.failures == 1:
                self._since = now
            self._until = now + self._backoff.delay(self.failures)
        if self._logged is None or now - self._logged >= STORE_LOG_EVERY:
            self._logged = now
            log.warning("database unavailable, delivery paused (retrying in %.1fs, "
                        "%d failures so far): %s", self._until - now, self.failures, exc)
        return self._until - now

    def recovered(self, now: float) -> None:
        """The store accepted a write: delivery goes on."""
        if self.failures:
            log.warning("database available again after %.0fs; delivery resumed",
                        now - self._since)
        self.failures = 0
        self.last = None
        self._until = 0.0
        self._logged = None

    def remaining(self, now: float) -> float:
        """Seconds left of the current pause."""
        return max(0.0, self._until - now)


def _always() -> bool:
    return True


def _nothing() -> None:
    return None


class Dispatcher:
    """Delivers due outbox rows through the notifiers."""

    def __init__(self, store: DispatchStore, notifiers: Mapping[str, Notifier], clock: Clock, *,
                 pacer: Pacer | None = None, retry: DeliveryRetry | None = None,
                 max_lanes: int = 64, send_timeout: float = SEND_TIMEOUT,
                 drain_timeout: float = DRAIN_TIMEOUT, observer: DispatchObserver | None = None,
                 rng: random.Random | None = None,
                 store_backoff: StoreBackoff | None = None) -> None:
        self._store = store
        # Shared, not copied: platform adapters install their notifiers after wiring.
        self._notifiers = notifiers
        self._clock = clock
        self._pacer = pacer or Pacer()
        self._retry = retry or DeliveryRetry()
        self._max_lanes = max_lanes
        self._send_timeout = send_timeout
        self._drain_timeout = drain_timeout
        self._observer = observer or DispatchObserver()
        self._rng = rng or random.Random()
        self._lanes: dict[Destination, asyncio.Task[None]] = {}
        self._sending: set[Destination] = set()
        """Lanes between the start of a send and the record of its outcome."""
        self._wake = asyncio.Event()
        self._stopping = False
        self._fault = _StoreFault(store_backoff or StoreBackoff())
        self._held_until: dict[Destination, datetime] = {}
        """The end of each destination's announced held group (see _announce_held)."""
        self.charts: ChartSource | None = None
        """Draws the chart of a grade alert, bound to its change (None: alerts are text)."""
        self._epoch = 0
        self._valid: Callable[[], bool] = _always
        self._on_fenced: Callable[[], None] = _nothing
        self._fenced = False

    @property
    def epoch(self) -> int:
        """The leadership epoch every outbox write carries."""
        return self._epoch

    @property
    def fenced(self) -> bool:
        """Whether this run was refused for an older epoch (or a lease that ran out)."""
        return self._fenced

    def lead(self, epoch: int, *, valid: Callable[[], bool] = _always,
             on_fenced: Callable[[], None] = _nothing) -> None:
        """Deliver as the leader of `epoch` from the next `run` on.

        `valid` is asked right before each send (False: the lease may have run out, send
        nothing); `on_fenced` is called once when the store refuses the epoch or `valid`
        says no.
        """
        self._epoch = epoch
        self._valid = valid
        self._on_fenced = on_fenced
        self._fenced = False

    @property
    def platforms(self) -> list[str]:
        """Platforms this dispatcher can deliver to."""
        return sorted(self._notifiers)

    @property
    def pacer(self) -> Pacer:
        """The pacing shared by every send; chat replies use it too so they count."""
        return self._pacer

    def stopping(self) -> bool:
        """Whether shutdown has begun (no new sends start)."""
        return self._stopping

    def wake(self) -> None:
        """New rows were committed: look at the outbox now."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Dispatch until `stop`, then let in-flight sends finish (bounded)."""
        if self._fenced:
            # A fenced leader sends nothing more; the supervisor must not restart it into
            # sending: the step-down sets `stop` and a new `lead` clears this.
            await stop.wait()
            return
        self._stopping = False  # a run after a failed one (the supervisor's restart) sends again
        await self._start_notifiers()
        stopper = asyncio.create_task(stop.wait())
        loop = asyncio.get_running_loop()
        pruned = loop.time()
        try:
            await self._recover(stopper)
            while not stop.is_set() and not self._fenced:
                pause = self._fault.remaining(loop.time())
                if pause > 0:
                    await asyncio.wait({stopper}, timeout=pause)
                    continue
                if loop.time() - pruned >= PACER_PRUNE_EVERY:
                    pruned = loop.time()
                    self._pacer.forget_idle(older_than=PACER_PRUNE_EVERY)
                    self.forget_idle(self._clock.now())
                # Cleared before the queries: a commit while they run must wake the wait.
                self._wake.clear()
                try:
                    started = await self._start_lanes()
                    timeout = await self._idle_timeout(started)
                except StoreError as exc:
                    self._fault.failed(exc, loop.time())
                    continue
                waker = asyncio.create_task(self._wake.wait())
                await asyncio.wait({waker, stopper}, timeout=timeout,
                                   return_when=asyncio.FIRST_COMPLETED)
                waker.cancel()
        except asyncio.CancelledError:
            # Cancelled, not stopped: end now. A send cut off here stays `sending` and is
            # sent again after the restart (the crash case), never lost.
            stopper.cancel()
            await self._abort()
            raise
        finally:
            stopper.cancel()
            if not self._stopping or self._fenced:
                await self._drain()

    async def _recover(self, stopper: asyncio.Task[bool]) -> None:
        """Make rows left `sending` by a crash due again, waiting out a store fault."""
        loop = asyncio.get_running_loop()
        while not stopper.done():
            try:
                recovered = await self._store.recover(self._clock.now(), epoch=self._epoch)
            except FencedError as exc:
                self._fence(exc)
                return
            except StoreError as exc:
                await asyncio.wait({stopper}, timeout=self._fault.failed(exc, loop.time()))
                continue
            self._fault.recovered(loop.time())
            if recovered:
                log.warning("recovered %d alerts that were being sent when the bot stopped",
                            recovered)
            return

    async def run_until_idle(self, limit: float = 60.0) -> None:
        """Deliver everything due within `limit` seconds (for `run --once`), then return.

        Raises StoreError when the store fails (a later run delivers what is left), and
        FencedError when a newer leadership epoch began meanwhile.
        """
        self._stopping = False
        await self._start_notifiers()
        await self._store.recover(self._clock.now(), epoch=self._epoch)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while loop.time() < deadline and not self._fenced:
            await self._start_lanes()
            if self._lanes:
                await asyncio.wait(list(self._lanes.values()),
                                   timeout=max(0.0, deadline - loop.time()),
                                   return_when=asyncio.FIRST_COMPLETED)
                if self._fault.last is not None:
                    break
                continue
            next_due = await self._store.next_due(self.platforms)
            if next_due is None:
                break
            wait = (next_due - self._clock.now()).total_seconds()
            if wait > deadline - loop.time():
                break  # held or backing off beyond the limit: a later run delivers it
            await asyncio.sleep(max(wait, 0.0))
        await self._drain()
        if self._fenced:
            raise FencedError(f"leadership epoch {self._epoch} is over")
        if self._fault.last is not None:
            raise self._fault.last

    async def _start_notifiers(self) -> None:
        for notifier in list(self._notifiers.values()):
            try:
                await notifier.start()
            except Exception:  # a broken adapter must not stop the others from delivering
                reraise_if_cancelling()
                log.exception("the %s notifier failed to start", notifier.platform)

    async def _start_lanes(self) -> int:
        free = self._max_lanes - len(self._lanes)
        if free <= 0:
            return 0
        due = await self._store.due_destinations(self._clock.now(), free, self.platforms,
                                                 exclude=list(self._lanes))
        for destination in due:
            task = asyncio.create_task(self._lane(destination), name=f"lane {destination}")
            self._lanes[destination] = task
            task.add_done_callback(functools.partial(self._lane_done, destination))
        return len(due)

    def _lane_done(self, destination: Destination, task: asyncio.Task[None]) -> None:
        self._lanes.pop(destination, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery lane for %s crashed", destination, exc_info=task.exception())
        self._wake.set()

    async def _idle_timeout(self, started: int) -> float:
        if len(self._lanes) >= self._max_lanes:
            return IDLE_POLL
        if started:
            # Due destinations were just given lanes (as many as were free) and the end of
            # each lane wakes the loop to look again: asking now would mostly find those
            # lanes' own rows, queued on the store ahead of their reads. Rows due later are
            # looked for at that end, or at IDLE_POLL if a lane runs long.
            return IDLE_POLL
        next_due = await self._store.next_due(self.platforms)
        if next_due is None:
            return IDLE_POLL
        wait = (next_due - self._clock.now()).total_seconds()
        if wait <= 0 and self._lanes:
            # Rows due but busy in a lane: the lane's end wakes us, so no need to spin.
            return IDLE_POLL
        return min(IDLE_POLL, max(wait, 0.05))

    async def _abort(self) -> None:
        self._stopping = True
        lanes = list(self._lanes.values())
        for task in lanes:
            task.cancel()
        if lanes:
            await asyncio.wait(lanes)

    async def _drain(self) -> None:
        self._stopping = True
        if not self._lanes:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + stop_bound(self._drain_timeout, self._send_timeout)
        log.info("waiting for %d in-flight deliveries", len(self._lanes))
        _, pending = await asyncio.wait(list(self._lanes.values()),
                                        timeout=self._drain_timeout)
        # A send cut off after the platform got it would be repeated after the restart: let
        # sends in flight finish (each ends within the send timeout); stop only the lanes
        # that are waiting for a slot or the store, which have sent nothing.
        sending = {task for destination, task in self._lanes.items()
                   if destination in self._sending and task in pending}
        idle = pending - sending
        for task in idle:
            task.cancel()
        if sending:
            log.info("letting %d sends in flight finish (at most %.0fs)", len(sending),
                     max(0.0, deadline - loop.time()))
            _, late = await asyncio.wait(sending, timeout=max(0.0, deadline - loop.time()))
            for task in late:
                task.cancel()
            idle |= late
        if idle:
            await asyncio.wait(idle)

    # ------------------------------------------------------------------ one destination

    async def _lane(self, destination: Destination) -> None:
        try:
            await self._run_lane(destination)
        except FencedError as exc:
            self._fence(exc)
        except StoreError as exc:
            # Nothing of this lane is half done: a claimed send records its outcome itself.
            self._fault.failed(exc, asyncio.get_running_loop().time())

    async def _run_lane(self, destination: Destination) -> None:
        notifier = self._notifiers[destination.platform]
        now = self._clock.now()
        # The first pass's reads in one call: every round trip to the store before the
        # request is latency, and under load each one waits for a core.
        view = await self._store.delivery_view(destination, now)
        if view is None:
            return
        info = view.info
        if info.address:
            self._observer.address_loaded(destination, info.address)
        target = Target(destination, info.address)
        stale = False
        # Token mutes of the destination (token id -> end), read again with its policy.
        muted: dict[int, datetime] | None = None
        # Messages the last decision returned, the first already claimed (None: read them).
        decided: list[Committed] | None = None
        while not self.stopping():
            first, view = view, None
            claimed = decided is not None
            if first is not None:
                committed = first.committed
            elif decided is None:
                now = self._clock.now()
                committed = await self._store.committed(destination, now)
            else:
                committed, decided = decided, None
            stale = stale or bool(committed)
            # Sent messages are finished; any other outcome may leave a row due again soon.
            finished = True
            for index, message in enumerate(committed):
                if self.stopping():
                    return
                outcome = await self._deliver(notifier, target, message.key, message.changes,
                                              message.silent, message.attempts,
                                              message.first_created,
                                              with_chart=info.policy.charts,
                                              claimed=claimed and index == 0)
                if outcome in (Reason.DESTINATION_GONE, Reason.REKEYED):
                    return
                finished = finished and outcome is Reason.SENT
            # The view still holds at its `now` when nothing was sent since it was read.
            current = first if first is not None and not committed else None
            if current is None:
                now = self._clock.now()
            due = current.due if current else await self._store.due_alerts(destination, now)
            if not due:
                if not finished:
                    continue
                return
            if current is not None:
                muted = {m.token.token_id: m.until for m in current.mutes}
            elif stale or muted is None:
                # Sends took time: a moderator may have changed the policy meanwhile.
                if stale:
                    info = await self._store.destination(destination) or info
                muted = {m.token.token_id: m.until
                         for m in await self._store.token_mutes(destination, now)}
            policy = info.policy
            stale = True
            sent = (current.sent if current
                    else await self._store.sent_times(destination, now - policy.window))
            plan = throttle.plan(policy, due, sent, now, muted)
            singles = {d.row_id: d for d in plan.singles}
            by_row = {a.row_id: a for a in due}
            keys = PlanKeys(
                singles={row: message_key(by_row[row].change.change_id, destination)
                         for row in singles},
                digest=digest_key([message_key(by_row[d.row_id].change.change_id, destination)
                                   for d in plan.digest]) if plan.digest else None,
            )
            if not plan.messages:
                recorded = await self._store.apply_plan(destination, plan, keys, now,
                                                        epoch=self._epoch)
            else:
                # One transaction for the decision, the messages now due and the claim of the
                # first: the round trips between a poll's commit and the request are the
                # latency, and under load each one waits for a core.
                result = await self._store.decide(destination, plan, keys, now,
                                                  epoch=self._epoch)
                recorded, decided = result.recorded, result.messages
            self._fault.recovered(asyncio.get_running_loop().time())
            for reason, count in recorded.items():
                self._observer.decided(destination, reason, count)
            self._announce_held(destination, policy, plan)
            if not plan.messages:
                return

    def _fence(self, exc: StoreError) -> None:
        """Stop sending for good in this epoch and tell the owner (once)."""
        self._stopping = True
        self._wake.set()
        if self._fenced:
            return
        self._fenced = True
        log.warning("delivery stopped: %s; stepping down", exc)
        self._on_fenced()

    def forget_idle(self, now: datetime) -> int:
        """Drop held-group ends that have passed; returns how many went."""
        # A destination unsubscribed (or removed) while held never runs another lane pass to
        # clear its entry: without this the map would keep every such destination forever.
        passed = [d for d, until in self._held_until.items() if until <= now]
        for destination in passed:
            del self._held_until[destination]
        return len(passed)

    def _announce_held(self, destination: Destination, policy: Policy,
                       plan: throttle.Plan) -> None:
        """One line when a destination's alerts start being held, saying until when.

        Without it an operator sees nothing arrive for up to a window and cannot tell a held
        budget from a broken bot. Rows joining the same group (same end) are not announced again.
        """
        held = [d for d in plan.held if d.until is not None]
        if not held:
            self._held_until.pop(destination, None)
            return
        until = min(d.until for d in held if d.until is not None)
        if self._held_until.get(destination) == until:
            return
        self._held_until[destination] = until
        count = len(held)
        what = f"{count} alerts held, digest" if count > 1 else "1 alert held, next send"
        at = until.astimezone(UTC).strftime("%H:%M:%S UTC")
        if held[0].reason is Reason.HELD_QUIET:
            log.info("%s: quiet hours: %s at %s", destination, what, at)
        else:
            log.info("%s: budget %d/%s spent: %s at %s", destination, policy.max_alerts,
                     format_duration(policy.window), what, at)

    async def _deliver(self, notifier: Notifier, target: Target, key: str,
                       changes: Sequence[Change], silent: bool, attempts: int,
                       first_created: datetime, *, with_chart: bool = False,
                       claimed: bool = False) -> Reason:
        destination = target.destination
        message = render(changes)
        if with_chart and len(changes) == 1 and (changes[0].kind in CHART_KINDS
                                                 or changes[0].kind is Kind.SCHEDULED_DIGEST):
            # Drawn before the claim (unless `decide` made it) and the pacing slot, which must
            # lead straight to the send.
            message = await self._with_chart(message, changes[0], destination)
        # Claim first, so nothing but the send itself runs between taking a pacing slot and
        # the request: waiting for the store (one connection shared by every lane) after the
        # slot let the request leave later than the slot the pacer counted.
        # (`claimed`: the decision that committed the message claimed it in its transaction.)
        if not claimed:
            await self._store.claim(key, self._clock.now(), epoch=self._epoch)
            self._fault.recovered(asyncio.get_running_loop().time())
        limits = notifier.limits(destination)
        slot = await self._pacer.acquire(limits, scopes=(destination.platform, str(destination)))
        if not self.stopping() and not self._valid():
            # Paused past the lease (or cut off from the database): another replica may
            # lead by now. The claimed row is the new leader's to send.
            self._fence(FencedError(f"the lease of epoch {self._epoch} may have run out"))
        if self.stopping():
            # The stop began while this waited for a slot: the row stays claimed and the
            # restart sends it, once.
            self._pacer.release(limits, slot)
            return Reason.RETRY
        delivery = uuid.uuid4().hex[:8]
        token = correlation_id.set(f"send-{delivery}")
        self._sending.add(destination)
        try:
            outcome = await self._send(notifier, target, key, message, changes, silent,
                                       attempts, first_created, delivery,
                                       settled=lambda: self._pacer.settled(limits, slot))
        finally:
            self._sending.discard(destination)
            correlation_id.reset(token)
        if outcome == Reason.RATE_LIMITED:
            # The refused send did not use the platform's budget; holding its slot would make
            # the retry wait a whole window (a minute, for a Telegram group).
            self._pacer.release(limits, slot)
        return outcome

    async def _with_chart(self, message: Message, change: Change,
                          destination: Destination) -> Message:
        """`message` with its change's chart; as it is when no chart can be drawn in time."""
        if self.charts is None:
            return message
        try:
            image = await asyncio.wait_for(self.charts(change), timeout=CHART_TIMEOUT)
        except Exception as exc:
            reraise_if_cancelling()
            # A chart is an extra: the alert goes out as text rather than late or never.
            log.warning("chart for %s to %s not drawn (%s); sending text", change.change_id,
                        destination, str(exc) or type(exc).__name__)
            return message
        return replace(message, image=image)

    async def _send(self, notifier: Notifier, target: Target, key: str, message: Message,
                    changes: Sequence[Change], silent: bool, attempts: int,
                    first_created: datetime, delivery: str,
                    settled: Callable[[], None] = lambda: None) -> Reason:
        destination = target.destination
        try:
            result = await asyncio.wait_for(
                notifier.send(target, message, key=key, silent=silent),
                timeout=self._send_timeout,
            )
            # Before the store write: the pacer learns how long the request itself took.
            settled()
        except DeliveryError as exc:
            return await self._failed(target, key, exc, attempts, first_created, delivery)
        except TimeoutError:
            error = DeliveryError(f"no answer within {self._send_timeout:.0f}s", retryable=True)
            return await self._failed(target, key, error, attempts, first_created, delivery)
        except Exception as exc:  # a notifier bug must not lose or loop the alert
            reraise_if_cancelling()
            log.exception("delivery %s to %s crashed", delivery, destination)
            error = DeliveryError(f"unexpected {type(exc).__name__}", retryable=True)
            return await self._failed(target, key, error, attempts, first_created, delivery)
        now = self._clock.now()
        delivered = await self._persist(
            lambda: self._store.mark_sent(destination, key, result.message_id, now,
                                          epoch=self._epoch))
        log.debug("delivery %s: %s accepted %s (%d alerts)", delivery, destination, key,
                  len(delivered))
        self._observer.delivered(destination, delivered, now)
        return Reason.SENT

    async def _failed(self, target: Target, key: str, error: DeliveryError, attempts: int,
                      first_created: datetime, delivery: str) -> Reason:
        destination = target.destination
        now = self._clock.now()
        if error.rekey_to:
            new = Destination(destination.platform, error.rekey_to, destination.thread_id)
            moved = await self._persist(lambda: self._store.rekey(destination, new, now,
                                                                  epoch=self._epoch))
            log.warning("delivery %s: %s moved to %s; %d alerts re-queued", delivery,
                        destination, new, moved)
            outcome = Reason.REKEYED
            self.wake()
        elif error.destination_gone:
            await self._persist(lambda: self._store.mark_dead(
                destination, key, error.reason, Reason.DESTINATION_GONE, now,
                epoch=self._epoch))
            await self._persist(lambda: self._store.pause(destination, error.reason, now,
                                                          epoch=self._epoch))
            log.warning("delivery %s: %s no longer accepts messages (%s); paused its "
                        "subscriptions", delivery, destination, error.reason)
            self._observer.paused(destination, error.reason)
            outcome = Reason.DESTINATION_GONE
        elif error.credentials:
            # The bot's token was refused: hold the whole platform, keep every alert due.
            wait = max(error.retry_after or 60.0, 0.0)
            self._pacer.pause(destination.platform, wait)
            await self._store.mark_retry(destination, key, now + timedelta(seconds=wait),
                                         error.reason, Reason.RETRY, False, now,
                                         epoch=self._epoch)
            log.warning("delivery %s to %s refused: %s; retrying in %.0fs", delivery,
                        destination, error.reason, wait)
            outcome = Reason.RETRY
        elif error.rate_limited:
            wait = max(error.retry_after or 1.0, 0.0)
            scope = destination.platform if error.global_limit else str(destination)
            self._pacer.pause(scope, wait)
            await self._persist(lambda: self._store.mark_retry(
                destination, key, now + timedelta(seconds=wait), error.reason,
                Reason.RATE_LIMITED, False, now, epoch=self._epoch))
            log.info("delivery %s: %s rate limited, retrying in %.1fs", delivery, destination,
                     wait)
            outcome = Reason.RATE_LIMITED
        elif error.retryable and not self._retry.exhausted(attempts + 1, first_created, now):
            wait = max(self._retry.delay(attempts, self._rng), error.retry_after or 0.0)
            await self._persist(lambda: self._store.mark_retry(
                destination, key, now + timedelta(seconds=wait), error.reason, Reason.RETRY,
                True, now, epoch=self._epoch))
            log.warning("delivery %s to %s failed (%s); attempt %d, retrying in %.1fs",
                        delivery, destination, error.reason, attempts + 1, wait)
            outcome = Reason.RETRY
        else:
            await self._persist(lambda: self._store.mark_dead(
                destination, key, error.reason, Reason.DEAD, now, epoch=self._epoch))
            log.error("delivery %s to %s failed permanently after %d attempts: %s", delivery,
                      destination, attempts + 1, error.reason)
            outcome = Reason.DEAD
        self._observer.failed(destination, outcome)
        return outcome

    async def _persist(self, write: Callable[[], Awaitable[T]]) -> T:
        """Record the outcome of a send already made, retrying through a store fault.

        The row is claimed (`sending`); giving up would leave it for the next start to send
        again. Only cancellation (the drain's deadline) ends the retries, and then the
        restart's recovery sends it under the same key; a refused epoch (FencedError) is
        never retried: the new leader's recovery sends it.
        """
        loop = asyncio.get_running_loop()
        while True:
            try:
                result = await write()
            except FencedError:
                raise
            except StoreError as exc:
                await asyncio.sleep(self._fault.failed(exc, loop.time()))
                continue
            self._fault.recovered(loop.time())
            return result
