"""/chart, /charts and the key drivers of /grade in the command core."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

from alertbot.domain.charts import ChartSpec, DriversSpec, History, Point, driver_scores
from alertbot.domain.commands import ReplyKind
from alertbot.domain.detect import Rules
from alertbot.domain.models import Change, Direction, Kind, Token, make_change_id
from alertbot.ports.charts import ChartRenderer
from alertbot.ports.source import SourceError
from alertbot.services.charts import ChartService
from alertbot.services.commands import CommandCore
from alertbot.services.lookup import Lookup
from alertbot.store.sqlite import SqliteStore
from tests.support import ManualClock
from tests.unit.services.test_commands import BTC, GROUP, NOW, TableSource, member
from tests.unit.services.test_commands import admin as moderator


class TableHistory:
    """History of BTC only: a rising TM grade with component scores."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail = False

    async def history(self, token: Token, days: int, end: datetime) -> History:
        self.calls += 1
        if self.fail:
            raise SourceError("Token Metrics /tm-grade-history timed out after 20s")
        start = end - timedelta(days=days)
        points = tuple(Point(start + timedelta(days=i), 40.0 + i / 3) for i in range(days))
        drivers = tuple(driver_scores(start + timedelta(days=i),
                                      {"COMMUNITY_SCORE": 50.0 + i / 10, "VC_SCORE": None})
                        for i in range(days))
        return History(token, start, end, tm_grade=points, drivers=drivers)


class RecordingRenderer:
    def __init__(self) -> None:
        self.specs: list[ChartSpec | DriversSpec] = []

    def render(self, spec: ChartSpec) -> bytes:
        self.specs.append(spec)
        return b"\x89PNG chart"

    def render_drivers(self, spec: DriversSpec) -> bytes:
        self.specs.append(spec)
        return b"\x89PNG drivers"


@dataclass
class World:
    store: SqliteStore
    core: CommandCore
    history: TableHistory
    renderer: RecordingRenderer


@pytest.fixture
async def world() -> AsyncIterator[World]:
    store = SqliteStore(":memory:")
    await store.open()
    clock = ManualClock(NOW)
    lookup = Lookup(store, TableSource(), clock, fresh_for=timedelta(minutes=5))
    history, renderer = TableHistory(), RecordingRenderer()

    def factory() -> ChartRenderer:
        return renderer

    charts = ChartService(history, factory, clock)
    core = CommandCore(store, lookup, clock, band_label=Rules().band_label, charts=charts)
    yield World(store, core, history, renderer)
    await store.close()


async def test_chart_default_range_is_90_days_with_caption_as_text(world: World) -> None:
    reply = await world.core.handle(member(), "chart", "BTC")
    assert not reply.error and reply.image is not None
    assert reply.image.png.startswith(b"\x89PNG")
    assert reply.lines == (reply.image.caption,)
    assert "(90 days)" in reply.image.caption
    assert reply.image.filename == "btc-grades.png"


async def test_chart_drivers_draws_the_components(world: World) -> None:
    reply = await world.core.handle(member(), "chart", "btc drivers")
    assert reply.image is not None and reply.image.filename == "btc-drivers.png"
    assert isinstance(world.renderer.specs[0], DriversSpec)
    assert "Community 52.9 (+2.9)" in reply.image.caption


@pytest.mark.parametrize("text", ["BTC 2y", "BTC 90d extra", "", "BTC 3d"])
async def test_chart_bad_input_is_a_usage_error_that_reads_nothing(world: World,
                                                                   text: str) -> None:
    reply = await world.core.handle(member(), "chart", text)
    assert reply.kind is ReplyKind.USAGE and reply.image is None
    assert "Usage: /chart SYMBOL [30d|90d|1y|drivers]" in reply.text
    assert world.history.calls == 0


async def test_chart_unknown_symbol_is_not_found(world: World) -> None:
    reply = await world.core.handle(member(), "chart", "NOPE")
    assert reply.kind is ReplyKind.NOT_FOUND and reply.image is None


async def test_chart_history_failure_is_a_one_line_refusal(world: World) -> None:
    world.history.fail = True
    reply = await world.core.handle(member(), "chart", "BTC 30d")
    assert reply.kind is ReplyKind.NOT_FOUND
    assert reply.text == ("No history for BTC right now: Token Metrics /tm-grade-history "
                          "timed out after 20s")


async def test_grade_shows_key_drivers_with_change(world: World) -> None:
    reply = await world.core.handle(member(), "grade", "BTC")
    assert "Key drivers (fundamental grade):" in reply.lines
    community = next(line for line in reply.lines if "Community:" in line)
    assert community == "  Community: 52.9 (+2.9 since 28 Oct 2026)"
    assert "  VC: not rated" in reply.lines


async def test_grade_without_history_still_answers(world: World) -> None:
    world.history.fail = True
    reply = await world.core.handle(member(), "grade", "BTC")
    assert not reply.error and reply.message is not None
    assert "Key drivers (fundamental grade):" not in reply.lines


async def test_charts_on_by_moderator_sets_the_flag_and_audits(world: World) -> None:
    reply = await world.core.handle(moderator(), "charts", "on")
    assert reply.text.startswith("Charts on: TM grade and fundamental grade alerts here")
    info = await world.store.destination(GROUP)
    assert info is not None and info.policy.charts
    [audit] = await world.store.recent_audit(1)
    assert audit.detail == "charts on"
    off = await world.core.handle(moderator(), "charts", "OFF")
    assert off.text == "Charts off: grade alerts here are text only."


async def test_charts_member_is_refused_and_nothing_changes(world: World) -> None:
    reply = await world.core.handle(member(), "charts", "on")
    assert reply.kind is ReplyKind.REFUSED
    assert await world.store.destination(GROUP) is None


@pytest.mark.parametrize("text", ["", "maybe", "on off"])
async def test_charts_bad_setting_is_usage_and_changes_nothing(world: World, text: str) -> None:
    reply = await world.core.handle(moderator(), "charts", text)
    assert reply.kind is ReplyKind.USAGE and "Usage: /charts on|off" in reply.text
    assert await world.store.destination(GROUP) is None




async def test_grade_key_drivers_change_since_the_last_fundamental_alert(world: World) -> None:
    alerted = NOW - timedelta(days=10)
    change = Change(make_change_id(BTC.token_id, Kind.FUNDAMENTAL, 70.0, 81.0, alerted), BTC,
                    Kind.FUNDAMENTAL, 70.0, 81.0, Direction.UP, alerted, alerted, "", "",
                    "delta")
    await world.store.upsert_tokens([BTC], NOW)
    await world.store.record_poll([], [change], alerted)

    reply = await world.core.handle(member(), "grade", "BTC")

    community = next(line for line in reply.lines if "Community:" in line)
    assert community == "  Community: 52.9 (+0.9 since 17 Nov 2026)"
