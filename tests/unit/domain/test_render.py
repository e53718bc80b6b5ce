"""Rendering of alerts, digests and lookups (platform-neutral)."""

from __future__ import annotations

from datetime import UTC, datetime

from alertbot.domain.detect import Rules
from alertbot.domain.models import (
    Change,
    Direction,
    Kind,
    Reading,
    Snapshot,
    Token,
    make_change_id,
)
from alertbot.domain.render import (
    render,
    render_grade_lookup,
    render_signal_lookup,
)

TS = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
BTC = Token(3375, "BTC", "Bitcoin", "bitcoin")


def change(kind: Kind, old: float, new: float, direction: Direction, labels: tuple[str, str],
           cause: str) -> Change:
    return Change(make_change_id(3375, kind, old, new, TS), BTC, kind, old, new, direction, TS,
                  TS, labels[0], labels[1], cause)


def test_render_signal_flip_titles_new_label_with_both_labels() -> None:
    message = render([change(Kind.SIGNAL, -1, 1, Direction.UP, ("bearish", "bullish"), "flip")])
    assert message.title == "BTC daily signal turned bullish"
    assert message.lines == ("Bitcoin (BTC)", "bearish → bullish", "as of 2026-11-27")
    assert message.link == "https://app.tokenmetrics.com/bitcoin"
    assert not message.is_digest and message.direction is Direction.UP


def test_render_grade_band_and_delta() -> None:
    band = render([change(Kind.TM_GRADE, 58.0, 63.25, Direction.UP, ("Neutral", "Buy"), "band")])
    assert band.title == "BTC TM grade upgraded to Buy"
    assert band.lines[1] == "Neutral → Buy (58.0 → 63.2)"
    delta = render([change(Kind.TM_GRADE, 71.0, 61.0, Direction.DOWN, ("Buy", "Buy"), "delta")])
    assert delta.title == "BTC TM grade down 10.0 points"
    assert delta.lines[1] == "Buy: 71.0 → 61.0"
    assert delta.lines[2] == "as of 2026-11-27 14:00 UTC"


def test_render_digest_lists_each_change_oldest_first() -> None:
    up = change(Kind.HOURLY, -1, 1, Direction.UP, ("bearish", "bullish"), "flip")
    down = change(Kind.FUNDAMENTAL, 70, 60, Direction.DOWN, ("blueChip", "emerging"), "class")
    message = render([down, up])
    assert message.is_digest and message.title == "2 more changes"
    assert message.direction is None
    assert message.lines[0].startswith("▼ BTC fundamental grade downgraded to emerging")
    assert message.lines[1] == "▲ BTC hourly signal turned bullish · bearish → bullish"


def test_render_token_without_slug_links_by_name() -> None:
    token = Token(1, "NEW", "Brand New Coin", "")
    assert token.link == "https://app.tokenmetrics.com/brand-new-coin"


def test_render_lookups_show_missing_data() -> None:
    snapshot = Snapshot(BTC, {
        Kind.SIGNAL: Reading(BTC, Kind.SIGNAL, 1.0, TS,
                             fired_at=datetime(2026, 11, 20, tzinfo=UTC)),
        Kind.TM_GRADE: Reading(BTC, Kind.TM_GRADE, 64.5, TS, "Buy"),
    })
    signal = render_signal_lookup(snapshot)
    assert "Daily signal: bullish since 2026-11-20" in signal.lines
    assert "Hourly signal: no data" in signal.lines
    grades = render_grade_lookup(snapshot, Rules().band_label)
    assert "TM grade: 64.5 (Buy)" in grades.lines
    assert "Fundamental grade: no data" in grades.lines
