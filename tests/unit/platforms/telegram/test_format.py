"""Telegram message formatting: escaping and splitting into messages (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alertbot.domain.models import Change, Direction, Kind, Token, make_change_id
from alertbot.domain.render import render_change, render_digest
from alertbot.platforms.telegram.format import Line, alert_lines, html_chunks, utf16_len
from tests.fakes.telegram_api import parse_html

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def flip(token: Token, seconds: int = 0) -> Change:
    at = NOW + timedelta(seconds=seconds)
    return Change(make_change_id(token.token_id, Kind.HOURLY, -1, 1, at), token, Kind.HOURLY,
                  -1.0, 1.0, Direction.UP, at, at, "bearish", "bullish", "flip")


def test_alert_lines_escape_every_api_string() -> None:
    token = Token(1, "A&B", "<b>Evil</b> & @everyone", "x<y")
    html = "\n".join(line.html for line in alert_lines(render_change(flip(token))))
    visible, entities = parse_html(html)
    assert "<b>Evil</b> & @everyone (A&B)" in visible.splitlines()
    assert visible.splitlines()[0] == "▲ A&B hourly signal turned bullish"
    assert [e["type"] for e in entities] == ["bold", "text_link"]
    assert entities[1]["url"] == "https://app.tokenmetrics.com/x%3Cy"


def test_alert_lines_digest_has_bold_title_and_no_link() -> None:
    changes = [flip(Token(i, f"T{i}", f"Token {i}"), i) for i in range(3)]
    lines = alert_lines(render_digest(changes))
    assert lines[0] == Line("3 more changes:", bold=True)
    assert len(lines) == 4 and not any(line.href for line in lines)


def test_utf16_len_counts_astral_characters_twice() -> None:
    assert utf16_len("a€🚀") == 4


def test_html_chunks_short_text_is_one_chunk() -> None:
    assert html_chunks([Line("Title", bold=True), Line("a < b")]) == ["<b>Title</b>\na &lt; b"]


def test_html_chunks_split_only_between_lines_within_visible_limit() -> None:
    lines = [Line("Title & more", bold=True)] + [Line(f"line {i} <&> " + "x" * 30)
                                                  for i in range(400)]
    chunks = html_chunks(lines, limit=4096)
    assert len(chunks) > 1
    seen: list[str] = []
    for chunk in chunks:
        visible, _ = parse_html(chunk)  # raises if a tag or entity were cut
        assert utf16_len(visible) <= 4096
        seen.extend(visible.split("\n"))
    assert seen == [line.text for line in lines]


def test_html_chunks_escaping_does_not_count_towards_the_limit() -> None:
    line = Line("&" * 100)
    (chunk,) = html_chunks([line], limit=100)
    assert len(chunk) == 500 and parse_html(chunk)[0] == "&" * 100


def test_html_chunks_overlong_line_is_cut_keeping_its_style() -> None:
    chunks = html_chunks([Line("🚀" * 30, bold=True)], limit=21)
    texts = [parse_html(c) for c in chunks]
    assert [utf16_len(v) for v, _ in texts] == [20, 20, 20]
    assert all(e == [{"offset": 0, "length": 20, "type": "bold"}] for _, e in texts)


def test_html_chunks_never_start_or_end_a_part_with_blank_lines() -> None:
    lines = [Line("a" * 8), Line(""), Line("b" * 8), Line(" "), Line("c" * 8)]
    assert html_chunks(lines, limit=10) == ["a" * 8, "b" * 8, "c" * 8]
