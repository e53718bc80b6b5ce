"""Operations wiring: metrics, operator alerts, the HTTP server, retention and SIGHUP reloads.

`install_operations(app)` runs at the end of `build()`; everything long-running it adds is a
background job, so only `alertbot run` starts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from pydantic import SecretStr

from alertbot.config import SECRET_VARIABLES, ConfigError, Settings, load_settings
from alertbot.http.server import WebServer
from alertbot.observability.metrics import QuotaProbe, QuotaUsage
from alertbot.ports.clock import Clock
from alertbot.ports.source import Source
from alertbot.ports.store import Maintenance, PurgeResult
from alertbot.services.ops_monitor import OpsMonitor, parse_destination

if TYPE_CHECKING:
    from alertbot.bootstrap.app import App

log = logging.getLogger(__name__)

RETENTION_EVERY = 3600.0
RETENTION_FIRST_AFTER = 60.0
LIVE_SETTINGS = ("log_level", "retention_days")
"""Non-secret settings a SIGHUP applies at once; others need a restart."""
_FIELD_OF = {info.alias: name for name, info in Settings.model_fields.items() if info.alias}


@runtime_checkable
class RotatesKey(Protocol):
    """A source that can switch to a new API key without a restart."""

    def rotate_key(self, api_key: SecretStr) -> None:
        """Use the new key from the next request on."""
        ...


async def install_operations(app: App) -> None:
    """Metrics, address redaction, operator alerts, HTTP, retention and SIGHUP for `app`."""
    metrics = app.metrics
    app.observers.add(metrics)
    app.observers.on_address(app.redactor.add_address)
    for info in await app.store.destinations(with_address=True):
        if info.address:
            app.redactor.add_address(info.address)
    quota = quota_probe(app.source)
    auth_error = _auth_error(app.source)
    api = getattr(app.source, "api", None)
    if api is not None and hasattr(api, "on_call"):
        api.on_call = metrics.api_call
    if app.settings.ops_destination:
        destination = parse_destination(app.settings.ops_destination)
        if destination.platform not in app.notifiers:
            log.warning("ALERTBOT_OPS_DESTINATION is on %s, which is not enabled; operator "
                        "alerts stay queued until it is", destination.platform)
        monitor = OpsMonitor(app.store, app.clock, destination, app.poller,
                             wake=app.dispatcher.wake, redactor=app.redactor,
                             auth_error=auth_error, quota=quota, metrics=metrics,
                             check_every=min(60.0, max(1.0, app.poller.interval.total_seconds())))
        app.observers.add(monitor)
        app.background.append(monitor.run)
    if app.settings.http_port:
        app.web = WebServer(app, metrics, quota=quota)
        app.background.append(app.web.serve)
    retention = Retention(app.store, app.clock, lambda: app.settings.retention_days)
    app.background.append(retention.run)
    app.background.append(Reloader(app).run)


def quota_probe(source: Source) -> QuotaProbe | None:
    """Calls used this month against the plan, for sources that count them."""
    from alertbot.sources.tokenmetrics.source import TokenMetricsSource

    if not isinstance(source, TokenMetricsSource):
        return None

    async def probe(now: datetime) -> QuotaUsage | None:
        usage = await source.budget.usage(now)
        return QuotaUsage(usage.total, source.plan.monthly_calls, usage.month)
    return probe


def _auth_error(source: Source) -> Callable[[], str | None] | None:
    from alertbot.sources.tokenmetrics.source import TokenMetricsSource

    if not isinstance(source, TokenMetricsSource):
        return None
    return lambda: source.last_auth_error


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


class Retention:
    """Periodically deletes history older than ALERTBOT_RETENTION_DAYS (0 = never)."""

    def __init__(self, store: Maintenance, clock: Clock, days: Callable[[], int], *,
                 every: float = RETENTION_EVERY,
                 first_after: float = RETENTION_FIRST_AFTER) -> None:
        self._store = store
        self._clock = clock
        self._days = days
        self._every = every
        self._first_after = first_after

    async def run(self, stop: asyncio.Event) -> None:
        """Background job: purge soon after the start, then every `every` seconds."""
        await _wait(stop, self._first_after)
        while not stop.is_set():
            try:
                await self.purge_once()
            except Exception:  # retention must never stop the bot
                log.exception("retention pass failed")
            await _wait(stop, self._every)

    async def purge_once(self) -> PurgeResult:
        """One pass; logs what it removed."""
        days = self._days()
        if days <= 0:
            return PurgeResult()
        now = self._clock.now()
        result = await self._store.purge(now - timedelta(days=days), now)
        if result.total:
            log.info("retention: removed %d rows older than %d days (decisions %d, outbox %d, "
                     "messages %d, changes %d)", result.total, days, result.decisions,
                     result.outbox, result.messages, result.changes)
        return result


class Reloader:
    """SIGHUP: re-read `*_FILE` secrets and `.env`, rotate what can rotate, log the names."""

    def __init__(self, app: App) -> None:
        self._app = app
        self._requested = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Background job: reload on every SIGHUP until `stop`."""
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGHUP, self._requested.set)
        except (NotImplementedError, RuntimeError, AttributeError):
            log.info("SIGHUP reloads are not available here")
            return
        try:
            while not stop.is_set():
                waiters = [asyncio.ensure_future(stop.wait()),
                           asyncio.ensure_future(self._requested.wait())]
                try:
                    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiter in waiters:
                        waiter.cancel()
                if self._requested.is_set() and not stop.is_set():
                    self._requested.clear()
                    await self.reload()
        finally:
            loop.remove_signal_handler(signal.SIGHUP)

    async def reload(self) -> list[str]:
        """Apply a fresh configuration; returns the variables that took effect."""
        app = self._app
        try:
            new = await asyncio.to_thread(load_settings, app.env_file)
        except ConfigError as exc:
            log.error("SIGHUP: configuration not reloaded, the running one stays: %s",
                      "; ".join(exc.problems))
            return []
        # Before anything can log them.
        for value in new.secrets():
            app.redactor.add(value)
        old = app.settings
        updates: dict[str, object] = {}
        applied: list[str] = []
        restart: list[str] = []
        for variable in SECRET_VARIABLES:
            name = _FIELD_OF[variable]
            before, after = getattr(old, name), getattr(new, name)
            if _reveal(before) == _reveal(after):
                continue
            if self._rotate(variable, after):
                updates[name] = after
                applied.append(variable)
            else:
                restart.append(variable)
        for name, info in Settings.model_fields.items():
            variable = info.alias or name
            if variable in SECRET_VARIABLES or getattr(old, name) == getattr(new, name):
                continue
            if name in LIVE_SETTINGS:
                updates[name] = getattr(new, name)
                applied.append(variable)
            else:
                restart.append(variable)
        if "log_level" in updates:
            logging.getLogger().setLevel(str(updates["log_level"]))
        app.settings = old.model_copy(update=updates)
        if applied:
            log.info("SIGHUP: now using the new %s", ", ".join(applied))
        if restart:
            log.warning("SIGHUP: %s changed; restart alertbot to use the new values (the "
                        "running ones stay)", ", ".join(restart))
        if not applied and not restart:
            log.info("SIGHUP: configuration reloaded, nothing changed")
        return applied

    def _rotate(self, variable: str, value: object) -> bool:
        """Switch a secret in place; False when only a restart can apply it."""
        app = self._app
        if variable == "ALERTBOT_WEBHOOK_SECRET":
            return True  # read per request by the webhook notifier and the push ingest
        if variable == "TOKENMETRICS_API_KEY":
            if not isinstance(value, SecretStr) or not isinstance(app.source, RotatesKey):
                return False  # removing the key or leaving the demo source changes the source
            app.source.rotate_key(value)
            app.poller.poll_soon()
            return True
        # Bot tokens live inside the platform libraries' sessions and gateway connections.
        return False


def _reveal(value: object) -> object:
    return value.get_secret_value() if isinstance(value, SecretStr) else value
