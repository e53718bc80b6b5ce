"""The composition root: build(settings) -> App.

This package is the only place that knows every part. Adapters receive what they use;
installers return what they add (see parts.py); nothing below bootstrap imports it.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from datetime import timedelta
from pathlib import Path

from pydantic import SecretStr

from alertbot.bootstrap.app import App
from alertbot.bootstrap.operations import install_operations
from alertbot.bootstrap.platforms import (
    alert_buttons,
    install_builtin,
    install_discord,
    install_telegram,
)
from alertbot.bootstrap.session import SharedSession
from alertbot.bootstrap.sources import build_source
from alertbot.config import Settings
from alertbot.domain.charts import Scale
from alertbot.domain.detect import Rules
from alertbot.domain.models import Destination
from alertbot.observability.logs import Redactor
from alertbot.observability.metrics import Metrics
from alertbot.ports.charts import ChartRenderer
from alertbot.ports.clock import Clock, SystemClock
from alertbot.ports.leadership import Leadership
from alertbot.ports.lifecycle import Check, Closer
from alertbot.ports.notifier import Notifier
from alertbot.ports.observers import Observers
from alertbot.ports.store import QUEUED_STATES, Fencing, Maintenance
from alertbot.services.charts import ChartService
from alertbot.services.commands import AlertTestResult, CommandCore, send_test_alert
from alertbot.services.dispatcher import Dispatcher
from alertbot.services.lookup import Lookup
from alertbot.services.poller import Poller
from alertbot.store.factory import store_from_url
from alertbot.store.sqlite.leadership import SqliteLeadership
from alertbot.store.urls import is_postgres

log = logging.getLogger(__name__)


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def rules_from(settings: Settings) -> Rules:
    """Detection rules from configuration."""
    return Rules(hysteresis=settings.hysteresis, min_delta=settings.min_delta)


async def build(settings: Settings, *, clock: Clock | None = None,
                redactor: Redactor | None = None, env_file: Path | None = Path(".env")) -> App:
    """Open the store and wire source, notifiers, poller, dispatcher, lookups and operations."""
    clock = clock or SystemClock()
    redactor = redactor or Redactor(settings.secrets())
    store = store_from_url(settings.database_url, migrate=settings.migrate == "auto")
    await store.open()
    closers: list[Closer] = [store.close]
    try:
        session = SharedSession()
        closers.append(session.close)
        parts = await build_source(settings, store, clock, session)
        closers.append(parts.source.close)
    except BaseException:
        await _close_all(closers)
        raise
    rules = rules_from(settings)
    notifiers: dict[str, Notifier] = {}
    observers = Observers()
    dispatcher = Dispatcher(store, notifiers, clock, observer=observers)
    poller = Poller(store, parts.source, rules, clock, interval=parts.interval,
                    on_committed=dispatcher.wake, observer=observers)
    lookup = Lookup(store, parts.lookups, clock,
                    fresh_for=max(parts.interval * 3, timedelta(minutes=2)))
    poller.also_watch = lookup.recent_tokens
    leadership = leadership_for(settings.database_url, store, clock)
    closers.append(leadership.close)
    # Only the leader detects (pushes on standbys are queued for it), but a leader that lost
    # its lease unnoticed may still commit one last poll: replicas never trust a cache.
    poller.shared_state = not isinstance(leadership, SqliteLeadership)

    async def send_test(destination: Destination) -> AlertTestResult:
        # Through the notifiers the platforms install below, paced with the alerts.
        return await send_test_alert(destination, notifiers=notifiers, pacer=dispatcher.pacer,
                                     store=store, clock=clock)

    charts = (ChartService(parts.history, pillow_renderer, clock,
                           scale=Scale(rules.thresholds, rules.band_names))
              if parts.history is not None else None)
    if charts is not None:
        dispatcher.charts = charts.alert_chart
    commands = CommandCore(store, lookup, clock, band_label=rules.band_label,
                           on_policy_change=dispatcher.wake, send_test=send_test,
                           charts=charts)
    app = App(settings, clock, store, parts, rules, poller, dispatcher, lookup, commands,
              redactor, session, Metrics(), observers, notifiers=notifiers, closers=closers,
              env_file=env_file, charts=charts, leadership=leadership)
    poller.on_pushed = lambda report: app.metrics.count_changes(report.changes)
    app.checks["database"] = _database_check(store)
    app.checks["source"] = parts.check
    if parts.readiness is not None:
        app.health["source"] = parts.readiness
    try:
        await _install_platforms(app)
        app.install(await install_operations(app))
    except BaseException:
        await app.close()
        raise
    return app


def leadership_for(url: str, store: Fencing, clock: Clock) -> Leadership:
    """The leadership of the database at `url`: a lease on PostgreSQL, always-leader on SQLite."""
    if is_postgres(url):
        from alertbot.store.postgres.connection import PostgresUrl
        from alertbot.store.postgres.leadership import PostgresLeadership

        # The DSN without alertbot's own parameters (pool_size, …), which asyncpg refuses.
        return PostgresLeadership(PostgresUrl(url).dsn)
    return SqliteLeadership(store, clock)


async def _install_platforms(app: App) -> None:
    """Notifiers (and chat adapters) for every platform this configuration enables."""
    settings = app.settings
    app.install(install_builtin(app.clock, app.session,
                                lambda: _secret(app.settings.webhook_secret)))
    buttons = alert_buttons(app.store, app.commands, app.clock)
    app.install(await install_discord(settings, store=app.store, clock=app.clock,
                                      session=app.session, commands=app.commands,
                                      buttons=buttons))
    if settings.telegram_bot_token is not None:
        secret = settings.telegram_webhook_token()
        webhook = (None if settings.telegram_webhook_url is None or secret is None
                   else (settings.telegram_webhook_url, secret.get_secret_value()))
        app.install(install_telegram(
            settings.telegram_bot_token.get_secret_value(), settings.telegram_api_url,
            store=app.store, clock=app.clock, commands=app.commands,
            pacer=app.dispatcher.pacer, redactor=app.redactor, on_rekey=app.dispatcher.wake,
            buttons=buttons, webhook=webhook))


def pillow_renderer() -> ChartRenderer:
    """The chart renderer; Pillow is imported only when the first chart is drawn."""
    from alertbot.charts.pillow import PillowRenderer

    return PillowRenderer()


async def _close_all(closers: list[Closer]) -> None:
    for closer in reversed(closers):
        with suppress(Exception):
            await closer()


def _database_check(store: Maintenance) -> Check:
    async def check() -> str:
        await store.ping()
        stats = await store.outbox_stats()
        queued = sum(v for k, v in stats.by_state.items() if k in QUEUED_STATES)
        return f"reachable, {queued} alerts queued"
    return check
