"""ChartService: a scheduled digest's chart shows its busiest token up to the period's end."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from alertbot.domain.charts import History, Point
from alertbot.domain.models import (
    Change,
    Destination,
    DigestSchedule,
    Direction,
    Kind,
    Token,
    make_change_id,
)
from alertbot.domain.scheduled_digest import build_summary, digest_change, period_containing
from alertbot.services.charts import (
    DIGEST_DAYS_DAILY,
    DIGEST_DAYS_WEEKLY,
    ChartService,
    ChartUnavailable,
)
from tests.support import ManualClock
from tests.unit.services.test_commands_charts import RecordingRenderer

AT = datetime(2026, 11, 27, 12, tzinfo=UTC)
BTC = Token(1, "BTC", "Bitcoin", "bitcoin")
ETH = Token(3, "ETH", "Ethereum", "ethereum")
CHAT = Destination("telegram", "-100")


class Recorder:
    """History source that records what was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[int, str, int, datetime]] = []

    async def history(self, token: Token, days: int, end: datetime) -> History:
        self.asked.append((token.token_id, token.symbol, days, end))
        start = end - timedelta(days=days)
        return History(token, start, end, tm_grade=(Point(start, 50.0), Point(end, 60.0)))


def grade(token: Token, minutes: int) -> Change:
    at = AT + timedelta(minutes=minutes)
    return Change(make_change_id(token.token_id, Kind.TM_GRADE, 50, 70 + minutes, at), token,
                  Kind.TM_GRADE, 50.0, 70.0, Direction.UP, at, at, "Neutral", "Buy", "band")


@pytest.mark.parametrize(("weekly", "days"), [(False, DIGEST_DAYS_DAILY),
                                              (True, DIGEST_DAYS_WEEKLY)])
async def test_charts_digest_chart_busiest_token_ends_at_period_end(weekly: bool,
                                                                   days: int) -> None:
    schedule = DigestSchedule(weekly, time(9, 0), "Europe/Berlin")
    period = period_containing(schedule, AT)
    summary = build_summary(schedule, period, [grade(ETH, 1), grade(BTC, 2), grade(BTC, 3)],
                            {})
    source = Recorder()
    renderer = RecordingRenderer()
    charts = ChartService(source, lambda: renderer, ManualClock())

    image = await charts.alert_chart(digest_change(CHAT, summary, AT))

    assert source.asked == [(BTC.token_id, "BTC", days, period.end)]
    assert image.png.startswith(b"\x89PNG") and image.caption.startswith("BTC grade history")


async def test_charts_digest_of_an_empty_period_has_no_chart() -> None:
    schedule = DigestSchedule(False, time(9, 0), "UTC")
    summary = build_summary(schedule, period_containing(schedule, AT), [], {})
    charts = ChartService(Recorder(), RecordingRenderer, ManualClock())
    with pytest.raises(ChartUnavailable):
        await charts.alert_chart(digest_change(CHAT, summary, AT))
