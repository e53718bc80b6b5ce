"""Composition root: build(settings) -> App, and the main job's lifecycle."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
from pydantic import SecretStr

from alertbot.bootstrap.operations import install_operations
from alertbot.config import Settings
from alertbot.domain.detect import Rules
from alertbot.domain.models import ALL_KINDS, ALL_TOKENS, Destination, Policy
from alertbot.domain.parsing import format_duration
from alertbot.observability.logs import Redactor
from alertbot.observability.metrics import Metrics
from alertbot.platforms.console import DEFAULT_CHAT, ConsoleNotifier
from alertbot.platforms.webhook import WebhookNotifier
from alertbot.ports.clock import Clock, SystemClock
from alertbot.ports.notifier import Notifier
from alertbot.ports.observers import Observers
from alertbot.ports.source import Source, SourceError
from alertbot.ports.store import QUEUED_STATES, Maintenance, Store
from alertbot.services.dispatcher import Dispatcher
from alertbot.services.lookup import Lookup
from alertbot.services.poller import Poller
from alertbot.sources.replay import CURSOR_KEY, ReplaySource, load_demo_data
from alertbot.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from alertbot.http.server import WebServer

log = logging.getLogger(__name__)

DEMO_POLL_INTERVAL = timedelta(seconds=1)
DEMO_CONSOLE_POLICY = Policy(max_alerts=6, window=timedelta(minutes=1))
"""The embedded default shows throttling within a minute instead of an hour."""
CONSOLE_DEFAULT = Destination("console", DEFAULT_CHAT)

Check = Callable[[], Awaitable[str]]


@dataclass
class App:
    """Everything the main job runs, wired once."""

    settings: Settings
    clock: Clock
    store: Store
    source: Source
    rules: Rules
    notifiers: dict[str, Notifier]
    poller: Poller
    dispatcher: Dispatcher
    lookup: Lookup
    redactor: Redactor
    session: aiohttp.ClientSession
    """Shared HTTP session (webhooks, Token Metrics, Discord webhooks)."""
    checks: dict[str, Check] = field(default_factory=dict)
    """`alertbot check` probes: name -> coroutine returning a detail or raising."""
    health: dict[str, Callable[[], str | None]] = field(default_factory=dict)
    """Readiness probes: name -> None when ready, else why not."""
    background: list[Callable[[asyncio.Event], Coroutine[None, None, None]]] = field(
        default_factory=list)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    metrics: Metrics = field(default_factory=Metrics)
    observers: Observers = field(default_factory=Observers)
    """What the poller and dispatcher report to (metrics, operator alerts)."""
    env_file: Path | None = Path(".env")
    """Re-read on SIGHUP."""
    web: WebServer | None = None

    async def close(self) -> None:
        """Release every resource (idempotent, in reverse order of creation)."""
        for closer in reversed(self.closers):
            with suppress(Exception):
                await closer()
        self.closers.clear()


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def rules_from(settings: Settings) -> Rules:
    """Detection rules from configuration."""
    return Rules(hysteresis=settings.hysteresis, min_delta=settings.min_delta)


async def build(settings: Settings, *, clock: Clock | None = None,
                redactor: Redactor | None = None, env_file: Path | None = Path(".env")) -> App:
    """Open the store and wire source, notifiers, poller, dispatcher and lookups."""
    clock = clock or SystemClock()
    redactor = redactor or Redactor(settings.secrets())
    store = SqliteStore.from_url(settings.database_url)
    await store.open()
    closers: list[Callable[[], Awaitable[None]]] = [store.close]
    try:
        session = aiohttp.ClientSession()
        closers.append(session.close)
        source, interval = await _build_source(settings, store, clock, session)
        closers.append(source.close)
        rules = rules_from(settings)
        notifiers: dict[str, Notifier] = {}
        observers = Observers()
        dispatcher = Dispatcher(store, notifiers, clock, observer=observers)
        poller = Poller(store, source, rules, clock, interval=interval,
                        on_committed=dispatcher.wake, observer=observers)
        lookup = Lookup(store, _lookup_source(source), clock,
                        fresh_for=max(interval * 3, timedelta(minutes=2)))
        poller.also_watch = lookup.recent_tokens
    except BaseException:
        for closer in reversed(closers):
            with suppress(Exception):
                await closer()
        raise
    app = App(settings, clock, store, source, rules, notifiers, poller, dispatcher, lookup,
              redactor, session, closers=closers, observers=observers, env_file=env_file)
    app.checks["database"] = _database_check(store)
    app.checks["source"] = _source_check(source)
    ready: Callable[[], str | None] | None = getattr(source, "readiness", None)
    if ready is not None:
        app.health["source"] = ready
    try:
        await _install_platforms(app)
        await install_operations(app)
    except BaseException:
        await app.close()
        raise
    return app


async def _install_platforms(app: App) -> None:
    """Notifiers (and chat adapters) for every platform this configuration enables."""
    app.notifiers["console"] = ConsoleNotifier(clock=app.clock.now)
    app.notifiers["webhook"] = WebhookNotifier(
        app.session, secret=lambda: _secret(app.settings.webhook_secret))
    # Imported here: the Discord adapter imports this module for its App type.
    from alertbot.platforms.discord.bot import install_discord

    await install_discord(app)
    if app.settings.telegram_bot_token is not None:
        _install_telegram(app, app.settings.telegram_bot_token.get_secret_value())


def _install_telegram(app: App, token: str) -> None:
    """Telegram notifier, the command bot (background job), its check, health and closers."""
    from alertbot.platforms.telegram.commands import TelegramCommands
    from alertbot.platforms.telegram.notifier import TelegramNotifier
    from alertbot.services.commands import CommandCore

    root = app.settings.telegram_api_url
    pacer = app.dispatcher.pacer
    notifier = TelegramNotifier.connect(token, root, pacer=pacer, redactor=app.redactor)
    app.notifiers["telegram"] = notifier
    app.closers.append(notifier.close)
    core = CommandCore(app.store, app.lookup, app.clock, band_label=app.rules.band_label)
    bot = TelegramCommands(core, app.store, app.clock, token=token, api_root=root, pacer=pacer,
                           on_rekey=app.dispatcher.wake)
    app.background.append(bot.run)
    app.checks["telegram"] = notifier.check
    app.health["telegram"] = bot.health
    app.closers.append(bot.stop)


async def _build_source(settings: Settings, store: Store, clock: Clock,
                        session: aiohttp.ClientSession) -> tuple[Source, timedelta]:
    if settings.use_demo:
        saved = await store.get_meta(CURSOR_KEY)
        interval = settings.poll_interval or DEMO_POLL_INTERVAL
        source = ReplaySource(load_demo_data(), speed=settings.demo_speed,
                              cursor=float(saved) if saved else None, started_wall=clock.now(),
                              head_start=interval if saved else timedelta(0))
        return source, interval
    from alertbot.sources.tokenmetrics.source import build_tokenmetrics_source

    return await build_tokenmetrics_source(settings, store, clock, session)


def _database_check(store: Maintenance) -> Check:
    async def check() -> str:
        await store.ping()
        stats = await store.outbox_stats()
        queued = sum(v for k, v in stats.by_state.items() if k in QUEUED_STATES)
        return f"reachable, {queued} alerts queued"
    return check


def _lookup_source(source: Source) -> Source:
    """The view lookups use when the source keeps them on a budget of their own."""
    view: Source = getattr(source, "lookups", source)
    return view


def _source_check(source: Source) -> Check:
    probe: Check | None = getattr(source, "check", None)
    if probe is not None:  # the source proves its own URL and credentials
        return probe

    async def check() -> str:
        tokens = await source.universe()
        return f"{source.name}: {len(tokens)} tokens available"
    return check


async def ensure_default_subscription(app: App) -> bool:
    """First run of the embedded default: subscribe the console to everything."""
    if not app.settings.use_demo or app.settings.telegram_bot_token or \
            app.settings.discord_bot_token:
        return False
    if await app.store.destinations(limit=1):
        return False
    now = app.clock.now()
    await app.store.ensure_destination(CONSOLE_DEFAULT, now, policy=DEMO_CONSOLE_POLICY)
    await app.store.subscribe(CONSOLE_DEFAULT, ALL_TOKENS, ALL_KINDS, now, actor="alertbot")
    log.info("first run: subscribed the console to every demo token (max %d alerts per %s)",
             DEMO_CONSOLE_POLICY.max_alerts, format_duration(DEMO_CONSOLE_POLICY.window))
    return True


async def run(app: App, *, once: bool = False) -> int:
    """The main job: poll and dispatch until SIGINT/SIGTERM (or one cycle with once)."""
    await ensure_default_subscription(app)
    try:
        await app.store.upsert_tokens(await app.source.universe(), app.clock.now())
    except SourceError as exc:  # the poller retries and reports it; starting must not fail
        log.warning("token universe not loaded yet: %s", exc)
    source_name = app.source.name
    log.info("alertbot running: source %s, polling every %s, delivering to %s", source_name,
             format_duration(app.poller.interval), ", ".join(app.dispatcher.platforms))
    if once:
        await app.poller.poll_once()
        await app.dispatcher.run_until_idle()
        return 0
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, _request_stop, stop, signum)
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(app.poller.run(stop), name="poller")
            group.create_task(app.dispatcher.run(stop), name="dispatcher")
            for job in app.background:
                group.create_task(job(stop))
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    log.info("alertbot stopped")
    return 0


def _request_stop(stop: asyncio.Event, signum: int) -> None:
    if not stop.is_set():
        log.info("received %s, stopping", signal.Signals(signum).name)
    stop.set()
