"""Operations wiring: metrics, operator alerts, HTTP, scheduled digests, retention, SIGHUP.

`install_operations(app)` runs at the end of `build()` and returns the jobs it adds; only
`alertbot run` starts them.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import TYPE_CHECKING

from pydantic import SecretStr

from alertbot.bootstrap.app import App
from alertbot.bootstrap.parts import Installed
from alertbot.config import SECRET_VARIABLES, ConfigError, Settings, load_settings
from alertbot.services.ops_monitor import OpsMonitor, parse_destination
from alertbot.services.retention import Retention
from alertbot.services.scheduler import DigestScheduler

if TYPE_CHECKING:
    from alertbot.http.server import WebServer

log = logging.getLogger(__name__)

LIVE_SETTINGS = ("log_level", "retention_days")
"""Non-secret settings a SIGHUP applies at once; others need a restart."""
_FIELD_OF = {info.alias: name for name, info in Settings.model_fields.items() if info.alias}


async def install_operations(app: App) -> Installed:
    """Metrics, address redaction, operator alerts, HTTP, retention and SIGHUP for `app`."""
    metrics = app.metrics
    app.observers.add(metrics)
    app.observers.on_address(app.redactor.add_address)
    for info in await app.store.destinations(with_address=True):
        if info.address:
            app.redactor.add_address(info.address)
    parts = app.source_parts
    if parts.on_api_call is not None:
        parts.on_api_call(metrics.api_call)
    installed = Installed()
    if app.settings.ops_destination:
        destination = parse_destination(app.settings.ops_destination)
        if destination.platform not in app.notifiers:
            log.warning("ALERTBOT_OPS_DESTINATION is on %s, which is not enabled; operator "
                        "alerts stay queued until it is", destination.platform)
        monitor = OpsMonitor(app.store, app.clock, destination, app.poller,
                             wake=app.dispatcher.wake, redactor=app.redactor,
                             auth_error=parts.auth_error, quota=parts.quota, metrics=metrics,
                             check_every=min(60.0, max(1.0, app.poller.interval.total_seconds())))
        app.observers.add(monitor)
        installed.jobs["ops_monitor"] = monitor.run
    if app.settings.http_port:
        installed.jobs["http"] = web_server(app).serve
    installed.jobs["digests"] = DigestScheduler(app.store, app.clock,
                                                band_label=app.rules.band_label,
                                                wake=app.dispatcher.wake).run
    retention = Retention(app.store, app.clock, lambda: app.settings.retention_days)
    installed.jobs["retention"] = retention.run
    installed.jobs["reload"] = Reloader(app).run
    return installed


def web_server(app: App, *, port: int | None = None) -> WebServer:
    """The HTTP endpoints of `app` (on its configured address unless `port` is given)."""
    # Imported here: aiohttp.web and the push-ingest model cost about 2 MB, and
    # ALERTBOT_HTTP_PORT=0 runs without them.
    from alertbot.http.limits import HttpLimits
    from alertbot.http.server import TelegramRoute, WebServer

    telegram = None
    sink = app.receivers.get("telegram")
    path = app.settings.telegram_webhook_path
    if sink is not None and path is not None:
        # Read per request like the push-ingest secret; the value is fixed until a restart.
        telegram = TelegramRoute(path, sink, app.settings.telegram_webhook_token)
    return WebServer(store=app.store, poller=app.poller, lookup=app.lookup, clock=app.clock,
                     metrics=app.metrics, redactor=app.redactor, health=app.health,
                     webhook_secret=lambda: app.settings.webhook_secret,
                     host=app.settings.http_host,
                     port=app.settings.http_port if port is None else port,
                     quota=app.source_parts.quota,
                     limits=HttpLimits(app.settings.http_max_connections,
                                       app.settings.http_read_timeout.total_seconds()),
                     telegram=telegram, role=app.role, leader_probes=app.leader_probes)


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
            rotate = app.source_parts.rotate_key
            if not isinstance(value, SecretStr) or rotate is None:
                return False  # removing the key or leaving the demo source changes the source
            rotate(value)
            app.poller.poll_soon()
            return True
        # Bot tokens live inside the platform libraries' sessions and gateway connections.
        return False


def _reveal(value: object) -> object:
    return value.get_secret_value() if isinstance(value, SecretStr) else value
