"""Builds the configured source (demo replay or Token Metrics) and what operations need of it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import SecretStr

from alertbot.config import ConfigError, Settings
from alertbot.domain.models import ALL_KINDS, mask_to_kinds
from alertbot.observability.metrics import QuotaProbe, QuotaUsage
from alertbot.ports.clock import Clock
from alertbot.ports.lifecycle import Check, Probe
from alertbot.ports.source import HistorySource, Source
from alertbot.ports.store import SourceSetupStore
from alertbot.sources.replay import CURSOR_KEY, ReplaySource, load_demo_data

if TYPE_CHECKING:
    import aiohttp

DEMO_POLL_INTERVAL = timedelta(seconds=1)


@dataclass(frozen=True)
class SourceParts:
    """The source, the view lookups use, and its optional capabilities, typed."""

    source: Source
    lookups: Source
    """The view lookups use (Token Metrics keeps lookups on a budget of their own)."""
    interval: timedelta
    check: Check
    readiness: Probe | None = None
    quota: QuotaProbe | None = None
    auth_error: Probe | None = None
    """The API key's rejection, while it lasts (operator alerts)."""
    rotate_key: Callable[[SecretStr], None] | None = None
    """Switch to a new API key without a restart (SIGHUP)."""
    on_api_call: Callable[[Callable[[str, str], None]], None] | None = None
    """Register a counter of API calls by endpoint and status (metrics)."""
    history: HistorySource | None = None
    """Grade history for charts (None: this source has none)."""


async def build_source(settings: Settings, store: SourceSetupStore, clock: Clock,
                       session: Callable[[], aiohttp.ClientSession]) -> SourceParts:
    """The demo replay or the Token Metrics source, as configured."""
    if settings.use_demo:
        saved = await store.get_meta(CURSOR_KEY)
        interval = settings.poll_interval or DEMO_POLL_INTERVAL
        replay = ReplaySource(load_demo_data(), speed=settings.demo_speed,
                              cursor=float(saved) if saved else None, started_wall=clock.now(),
                              head_start=interval if saved else timedelta(0))
        return SourceParts(replay, replay, interval, _universe_check(replay), history=replay)
    return await _tokenmetrics(settings, store, clock, session)


async def _tokenmetrics(settings: Settings, store: SourceSetupStore, clock: Clock,
                        session: Callable[[], aiohttp.ClientSession]) -> SourceParts:
    from alertbot.sources.tokenmetrics.client import KEY_VARIABLE, TokenMetricsApi
    from alertbot.sources.tokenmetrics.quota import plan_quota
    from alertbot.sources.tokenmetrics.source import TokenMetricsSource, estimate_cycle_calls

    key = settings.tokenmetrics_api_key
    if key is None:
        raise ConfigError([f"{KEY_VARIABLE}: not set (needed unless ALERTBOT_DEMO=1)"])
    api = TokenMetricsApi(session(), settings.tokenmetrics_base_url, key, now=clock.now)
    watched = await store.watched()
    tokens = len(watched.token_masks)
    if watched.all_tokens_mask:
        tokens += len(settings.tokenmetrics_watchlist)
    kinds = mask_to_kinds(watched.kinds_mask) or ALL_KINDS
    calls = estimate_cycle_calls(max(1, tokens), kinds)
    plan = plan_quota(settings.tokenmetrics_monthly_calls, calls, settings.poll_interval)
    source = TokenMetricsSource(api, store, clock, plan,
                                watchlist=settings.tokenmetrics_watchlist)

    async def quota(now: datetime) -> QuotaUsage | None:
        usage = await source.budget.usage(now)
        return QuotaUsage(usage.total, plan.monthly_calls, usage.month)

    def on_api_call(callback: Callable[[str, str], None]) -> None:
        api.on_call = callback

    return SourceParts(source, source.lookups, plan.interval, source.check,
                       readiness=source.readiness, quota=quota,
                       auth_error=lambda: source.last_auth_error,
                       rotate_key=source.rotate_key, on_api_call=on_api_call,
                       history=source.lookups)


def _universe_check(source: Source) -> Check:
    async def check() -> str:
        tokens = await source.universe()
        return f"{source.name}: {len(tokens)} tokens available"
    return check
