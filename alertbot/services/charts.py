"""Charts for /chart, `alertbot chart`, /grade's key drivers and grade alerts.

History comes from the source (which caches it per token and day, see the Token Metrics
source); drawing is CPU work and runs in a worker thread so the event loop keeps serving
other chats. A chart for an alert is bound to that alert's change: its data ends at the
change's detection time and its last point is the alerted value, so a late send never shows
later data.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from alertbot.domain.charts import (
    ALERT_DAYS,
    ChartImage,
    DriversSpec,
    History,
    Point,
    Scale,
    build_chart,
    build_drivers,
    drivers_at,
)
from alertbot.domain.models import Change, Kind, Token
from alertbot.domain.scheduled_digest import summary_from_json
from alertbot.ports.charts import ChartRenderer, ChartRenderError
from alertbot.ports.clock import Clock
from alertbot.ports.source import HistorySource, SourceError

log = logging.getLogger(__name__)

DRIVER_LOOKBACK_DAYS = 30
"""How far back the key drivers look for the day of the last fundamental-grade alert.

30 days, as alert charts: one history (3 Token Metrics calls, kept for the day) serves both.
"""
ALERT_IMAGES_KEPT = 64
"""Charts of recent alerts kept, so a fan-out to many chats draws each once."""
DIGEST_DAYS_DAILY = 30
"""Days a daily digest's chart shows, up to the end of its period."""
DIGEST_DAYS_WEEKLY = 90
"""Days a weekly digest's chart shows."""


class ChartUnavailable(Exception):
    """No chart can be drawn right now (history unreadable, drawing failed); one line."""


class ChartService:
    """Draws grade-history and key-driver charts from the source's history."""

    def __init__(self, source: HistorySource, renderer: Callable[[], ChartRenderer],
                 clock: Clock, *, scale: Scale | None = None) -> None:
        self._source = source
        self._renderer_factory = renderer
        self._renderer: ChartRenderer | None = None
        self._clock = clock
        self._scale = scale or Scale()
        self._alert_images: dict[tuple[str, int], ChartImage] = {}
        # One drawing at a time: the renderer's cached fonts are not shared across threads,
        # and on a small machine parallel drawings only slow each other down.
        self._drawing = asyncio.Lock()

    def _draw(self) -> ChartRenderer:
        # Created on first use: the imaging library is only imported when a chart is drawn.
        if self._renderer is None:
            self._renderer = self._renderer_factory()
        return self._renderer

    async def history(self, token: Token, days: int, end: datetime | None = None) -> History:
        """The token's history over `days` up to `end` (default now); raises ChartUnavailable."""
        try:
            return await self._source.history(token, days, end or self._clock.now())
        except SourceError as exc:
            raise ChartUnavailable(f"No history for {token.symbol} right now: {exc}") from None

    async def chart(self, token: Token, days: int, *, end: datetime | None = None) -> ChartImage:
        """The grade-history chart of the `days` before `end` (default now)."""
        history = await self.history(token, days, end)
        return await self._render_history(history)

    async def alert_chart(self, change: Change, days: int = ALERT_DAYS) -> ChartImage:
        """The chart of a grade alert, bound to its change (never later data).

        Drawn once per change: every destination of the alert (and every retry) gets the
        same picture.
        """
        key = (change.change_id, days)
        cached = self._alert_images.get(key)
        if cached is not None:
            return cached
        image = await self._draw_alert(change, days)
        self._alert_images[key] = image
        while len(self._alert_images) > ALERT_IMAGES_KEPT:
            del self._alert_images[next(iter(self._alert_images))]
        return image

    async def _draw_alert(self, change: Change, days: int) -> ChartImage:
        if change.kind is Kind.SCHEDULED_DIGEST:
            return await self._draw_digest(change)
        history = await self.history(change.token, days, change.detected_at)
        point = Point(history.end, change.to_value)
        if change.kind is Kind.TM_GRADE:
            history = replace(history, tm_grade=_ending_with(history.tm_grade, point))
        elif change.kind is Kind.FUNDAMENTAL:
            history = replace(history, fundamental=_ending_with(history.fundamental, point))
        return await self._render_history(history)

    async def _draw_digest(self, change: Change) -> ChartImage:
        """A scheduled digest's chart: its busiest token, up to the end of its period."""
        summary = summary_from_json(change.cause)
        if summary.chart_token_id is None or not summary.tokens:
            raise ChartUnavailable("nothing changed in the period: no chart")
        busiest = summary.tokens[0]  # ranked like chart_token_id: most changes first
        token = Token(summary.chart_token_id, busiest.symbol, busiest.name, "")
        days = DIGEST_DAYS_WEEKLY if summary.weekly else DIGEST_DAYS_DAILY
        return await self._render_history(await self.history(token, days, summary.end))

    async def _render_history(self, history: History) -> ChartImage:
        spec = build_chart(history, self._scale)
        png = await self._render(lambda r: r.render(spec))
        return ChartImage(png, spec.caption, f"{history.token.symbol.lower()}-grades.png")

    async def drivers(self, token: Token, since: datetime | None) -> DriversSpec:
        """Component scores of the fundamental grade, with the change since `since`."""
        history = await self.history(token, DRIVER_LOOKBACK_DAYS)
        latest = drivers_at(history, None)
        previous = None
        if since is None and latest is not None and history.drivers:
            # No recent alert: the change over the whole lookback.
            previous = min(history.drivers, key=lambda d: d.at)
            if previous.at >= latest.at:
                previous = None
        elif since is not None and latest is not None:
            # `since` is a wall-clock time; the history may run on its own (demo) timeline.
            previous = drivers_at(history, history.end - (self._clock.now() - since))
            if previous is not None and previous.at >= latest.at:
                previous = None
        return build_drivers(token, latest, previous)

    async def drivers_chart(self, token: Token, since: datetime | None) -> ChartImage:
        """The key-drivers bar chart."""
        spec = await self.drivers(token, since)
        png = await self._render(lambda r: r.render_drivers(spec))
        return ChartImage(png, spec.caption, f"{token.symbol.lower()}-drivers.png")

    async def _render(self, draw: Callable[[ChartRenderer], bytes]) -> bytes:
        try:
            renderer = self._draw()
            async with self._drawing:
                return await asyncio.to_thread(draw, renderer)
        except ChartRenderError as exc:
            log.warning("chart rendering failed: %s", exc)
            raise ChartUnavailable(f"The chart could not be drawn: {exc}") from None


def _ending_with(points: tuple[Point, ...], point: Point) -> tuple[Point, ...]:
    """`points` with `point` as the newest (replacing points at or after its time)."""
    return (*(p for p in points if p.at < point.at - timedelta(seconds=1)), point)
