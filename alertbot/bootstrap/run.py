"""The main job's lifecycle: first-run defaults, then poll and dispatch until a signal."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from alertbot.bootstrap.app import App
from alertbot.bootstrap.roles import LEADER_PROBES, RoleSwitch, replica_jobs
from alertbot.bootstrap.supervisor import Supervisor
from alertbot.domain.address import ADDRESS_ID_PREFIX
from alertbot.domain.models import (
    ALL_KINDS,
    ALL_TOKENS,
    Change,
    Destination,
    Policy,
    Reason,
    Subscription,
)
from alertbot.domain.parsing import format_duration
from alertbot.platforms.console import DEFAULT_CHAT
from alertbot.ports.lifecycle import reraise_if_cancelling
from alertbot.ports.observers import DispatchObserver
from alertbot.ports.source import SourceError
from alertbot.ports.store import StoreError
from alertbot.services.scheduler import DigestScheduler

log = logging.getLogger(__name__)

DEMO_CONSOLE_POLICY = Policy(max_alerts=6, window=timedelta(minutes=1))
"""The embedded default shows throttling within a minute instead of an hour."""
CONSOLE_DEFAULT = Destination("console", DEFAULT_CHAT)
JOB_PROBE_PREFIX = "job "
"""/readyz names each supervised job's probe `job <name>`."""
DEMO_SUBSCRIPTION_KEY = "demo.console_subscription"
"""Meta key set while the console subscription the demo created for itself exists."""
START_RETRY_CAP = 30.0
"""Longest pause between start-up attempts while the database is unavailable."""
ONCE_LEADERSHIP_WAIT = 30.0
"""How long `run --once` waits to lead before it gives up."""
UNCONFIGURED_EXAMPLES = 2
"""Destinations named in the start-up warning about a platform without its bot token."""


async def ensure_default_subscription(app: App) -> bool:
    """First run of the embedded default: subscribe the console to everything.

    The subscription belongs to the demo: the first start with another source removes it
    (and drops what the demo still had queued for it), so it never follows the operator
    into production.
    """
    if not app.settings.use_demo:
        await _retire_demo_subscription(app)
        return False
    if app.settings.telegram_bot_token or app.settings.discord_bot_token:
        return False
    if await app.store.destinations(limit=1):
        return False
    now = app.clock.now()
    await app.store.ensure_destination(CONSOLE_DEFAULT, now, policy=DEMO_CONSOLE_POLICY)
    await app.store.subscribe(CONSOLE_DEFAULT, ALL_TOKENS, ALL_KINDS, now, actor="alertbot")
    await app.store.set_meta(DEMO_SUBSCRIPTION_KEY, "1")
    log.info("first run: subscribed the console to every demo token (max %d alerts per %s)",
             DEMO_CONSOLE_POLICY.max_alerts, format_duration(DEMO_CONSOLE_POLICY.window))
    return True


async def _retire_demo_subscription(app: App) -> None:
    if await app.store.get_meta(DEMO_SUBSCRIPTION_KEY) != "1":
        return
    now = app.clock.now()
    removed = await app.store.unsubscribe(CONSOLE_DEFAULT, ALL_TOKENS, ALL_KINDS, now,
                                          actor="alertbot")
    dropped = 0
    if not await app.store.subscriptions(CONSOLE_DEFAULT):
        # Nothing the operator subscribed is left there: drop the demo's queued alerts.
        dropped = await app.store.pause(CONSOLE_DEFAULT, "demo subscription removed", now)
    await app.store.set_meta(DEMO_SUBSCRIPTION_KEY, "")
    log.info("source %s: removed the demo's console subscription to every token (%d removed,"
             " %d queued demo alerts dropped)", app.source.name, removed, dropped)


async def prepare(app: App, *, once: bool = False) -> None:
    """Start-up: the embedded default's subscription and the source's token universe."""
    await _first_run(app, once=once)
    try:
        await app.store.upsert_tokens(await app.source.universe(), app.clock.now())
    except SourceError as exc:  # the poller retries and reports it; starting must not fail
        log.warning("token universe not loaded yet: %s", exc)
    except StoreError as exc:  # the poller stores the tokens it fetches
        if once:
            raise
        log.warning("token catalog not saved at start, the poller will save it: %s", exc)


async def _first_run(app: App, *, once: bool) -> None:
    """The first-run subscription, waiting out an unavailable database (one log line)."""
    delay = 1.0
    while True:
        try:
            await ensure_default_subscription(app)
            return
        except StoreError as exc:
            if once:
                raise
            if delay == 1.0:
                log.warning("database unavailable at start, retrying until it answers: %s",
                            exc)
        await asyncio.sleep(delay)
        delay = min(delay * 2, START_RETRY_CAP)


def missing_platform_variable(app: App, destination: Destination) -> str | None:
    """The unset variable a destination needs before anything reaches it (None: none)."""
    settings = app.settings
    if destination.platform == "telegram" and settings.telegram_bot_token is None:
        return "TELEGRAM_BOT_TOKEN"
    if (destination.platform == "discord" and settings.discord_bot_token is None
            and not destination.chat_id.startswith(ADDRESS_ID_PREFIX)):
        return "DISCORD_BOT_TOKEN"
    return None


async def _subscriptions_on(app: App, platforms: Iterable[str | None]) -> list[Subscription]:
    """All subscriptions, but none loaded when no destination exists on these platforms.

    A platform of None stands for any platform.
    """
    # With 100,000 subscriptions the full list is the largest allocation of a start-up, and
    # the common case (every subscribed platform configured) needs none of it.
    for platform in platforms:
        if await app.store.destinations(platform=platform, limit=1):
            return await app.store.subscriptions(None)
    return []


async def unconfigured_destinations(app: App) -> list[tuple[Destination, str]]:
    """Subscribed destinations whose platform is not configured, with the variable to set."""
    settings = app.settings
    unset = [platform for platform, token in (("telegram", settings.telegram_bot_token),
                                              ("discord", settings.discord_bot_token))
             if token is None]
    seen: dict[Destination, str] = {}
    for sub in await _subscriptions_on(app, unset):
        variable = missing_platform_variable(app, sub.destination)
        if variable is not None:
            seen.setdefault(sub.destination, variable)
    return list(seen.items())


async def _warn_unconfigured(app: App) -> None:
    try:
        missing = await unconfigured_destinations(app)
    except StoreError:
        return  # start-up reports the database itself
    by_variable: dict[str, list[Destination]] = {}
    for destination, variable in missing:
        by_variable.setdefault(variable, []).append(destination)
    # One line per platform: a deployment with 100,000 waiting chats must not log 100,000.
    for variable, destinations in by_variable.items():
        if len(destinations) == 1:
            log.warning("%s is subscribed but %s is not set: its alerts wait until it is",
                        destinations[0], variable)
            continue
        examples = ", ".join(str(d) for d in destinations[:UNCONFIGURED_EXAMPLES])
        log.warning("%d %s destinations are subscribed but %s is not set: their alerts wait "
                    "until it is (e.g. %s)", len(destinations), destinations[0].platform,
                    variable, examples)


async def _delivering_to(app: App) -> str:
    """Chat platforms with a bot token, and the others only where someone subscribed."""
    chat = {"telegram": app.settings.telegram_bot_token, "discord": app.settings.discord_bot_token}
    # Only platforms without a bot token depend on subscriptions (and the demo on any at all).
    unsure: list[str | None] = [p for p in app.dispatcher.platforms if chat.get(p) is None]
    if app.settings.use_demo and not any(chat.values()):
        unsure = [None]
    try:
        subscribed = {s.destination.platform for s in await _subscriptions_on(app, unsure)}
    except StoreError:
        subscribed = set()
    if app.settings.use_demo and not any(chat.values()) and not subscribed:
        subscribed.add("console")  # the first run subscribes it right after this line
    platforms = [p for p in app.dispatcher.platforms
                 if p in subscribed or chat.get(p) is not None]
    return ", ".join(platforms) or "no destination yet (see alertbot subscribe --help)"


class _Undelivered(DispatchObserver):
    """For `run --once`: destinations whose last send failed, and dead-lettered rows."""

    def __init__(self) -> None:
        self.failing: dict[Destination, Reason] = {}
        self.dead = 0

    def delivered(self, destination: Destination, changes: Sequence[Change],
                  now: datetime) -> None:
        """A later success clears an earlier retryable failure."""
        self.failing.pop(destination, None)

    def failed(self, destination: Destination, outcome: Reason) -> None:
        """Remember the failure; a re-keyed destination delivers under its new id."""
        if outcome in (Reason.DEAD, Reason.DESTINATION_GONE):
            self.dead += 1
        if outcome is not Reason.REKEYED:
            self.failing[destination] = outcome


async def run(app: App, *, once: bool = False) -> int:
    """The main job: poll and dispatch until SIGINT/SIGTERM (or one cycle with once).

    With once, 1 when alerts it could not deliver are left (dead-lettered, or due again
    after a failure), else 0.
    """
    log.info("alertbot running: source %s, polling every %s, delivering to %s", app.source.name,
             format_duration(app.poller.interval), await _delivering_to(app))
    await _warn_unconfigured(app)
    if once:
        undelivered = _Undelivered()
        app.observers.add(undelivered)
        await _once_as_leader(app)
        if undelivered.dead or undelivered.failing:
            where = ", ".join(str(d) for d in undelivered.failing) or "-"
            log.error("run --once: %d alerts dead-lettered; destinations still failing: %s",
                      undelivered.dead, where)
            return 1
        return 0
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, _request_stop, stop, signum)
    prepared = asyncio.Event()

    async def startup(stop: asyncio.Event) -> None:
        # A job like the others, so a failing start-up is retried and shown by /readyz
        # while the HTTP server, the dispatcher and the chat adapters already run.
        await prepare(app)
        prepared.set()

    async def poller(stop: asyncio.Event) -> None:
        if await _first_of(prepared, stop) is prepared:
            # Pushed readings any replica stored are detected here, beside the polls.
            async with asyncio.TaskGroup() as group:
                group.create_task(app.poller.run_pushes(stop))
                await app.poller.run(stop)

    jobs = {"startup": startup, "poller": poller, "dispatcher": app.dispatcher.run, **app.jobs}
    supervisor = Supervisor(app.clock, observer=app.observers, redact=app.redactor)
    for name in jobs:
        app.health[f"{JOB_PROBE_PREFIX}{name}"] = supervisor.probe(name)
    shared = replica_jobs(telegram_webhook=app.settings.telegram_webhook_url is not None)
    everywhere = {name: job for name, job in jobs.items() if name in shared}
    assert app.leadership is not None, "build() sets the leadership"
    switch = RoleSwitch(app.leadership, supervisor,
                        {name: job for name, job in jobs.items() if name not in everywhere},
                        dispatcher=app.dispatcher, poller=app.poller, metrics=app.metrics)
    app.role_switch = switch
    app.leader_probes.update(p for p in LEADER_PROBES if p not in shared)
    app.leader_probes.update(f"{JOB_PROBE_PREFIX}{name}" for name in switch.jobs)
    try:
        await supervisor.run({**everywhere, "leadership": switch.run}, stop)
    finally:
        app.role_switch = None
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    log.info("alertbot stopped")
    return 0


async def _once_as_leader(app: App) -> None:
    """One poll and dispatch cycle under a leadership epoch of its own."""
    leadership = app.leadership
    assert leadership is not None, "build() sets the leadership"
    gave_up = asyncio.Event()
    timer = asyncio.get_running_loop().call_later(ONCE_LEADERSHIP_WAIT, gave_up.set)
    try:
        epoch = await leadership.acquire(gave_up)
    finally:
        timer.cancel()
    if epoch is None:
        raise StoreError(f"no leadership within {ONCE_LEADERSHIP_WAIT:.0f}s (another replica "
                         "leads, or the database is unavailable); run --once delivers only "
                         "as the leader")
    app.poller.lead(epoch)
    app.dispatcher.lead(epoch, valid=leadership.valid)
    # The lease is renewed while the cycle runs: a throttled delivery may wait longer than it.
    done = asyncio.Event()
    holding = asyncio.create_task(leadership.hold(done))
    try:
        await prepare(app, once=True)
        await app.poller.poll_once()
        await app.poller.drain_pushed()
        # Periods that ended since the last run get their scheduled digests (cron use).
        await DigestScheduler(app.store, app.clock, band_label=app.rules.band_label).check()
        await app.dispatcher.run_until_idle()
    finally:
        done.set()
        try:
            await holding
        except Exception:
            reraise_if_cancelling()
            log.exception("run --once: renewing the lease failed")
        await leadership.release()


async def _first_of(*events: asyncio.Event) -> asyncio.Event:
    """Wait until one of `events` is set; that event."""
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return next(e for e in events if e.is_set())


def _request_stop(stop: asyncio.Event, signum: int) -> None:
    if not stop.is_set():
        log.info("received %s, stopping", signal.Signals(signum).name)
    stop.set()
