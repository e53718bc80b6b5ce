"""A scheduled digest as each platform shows it: Telegram HTML, Discord embed, console, JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta

from alertbot.domain.models import (
    Change,
    Destination,
    DigestSchedule,
    Direction,
    Kind,
    Message,
    Token,
    make_change_id,
)
from alertbot.domain.render import render
from alertbot.domain.scheduled_digest import build_summary, digest_change, period_containing
from alertbot.platforms.console import format_message
from alertbot.platforms.discord.embeds import EMBED_TOTAL_MAX, alert_embed
from alertbot.platforms.telegram.format import alert_lines, html_chunks
from alertbot.platforms.webhook import message_payload
from tests.fakes.telegram_api import parse_html

NOW = datetime(2026, 11, 30, 9, 0, 5, tzinfo=UTC)
DEST = Destination("telegram", "-1001")
SCHEDULE = DigestSchedule(False, time(9, 0), "UTC")


def grade(token: Token, frm: float, to: float, hours: int) -> Change:
    at = NOW - timedelta(hours=hours)
    return Change(make_change_id(token.token_id, Kind.TM_GRADE, frm, to, at), token,
                  Kind.TM_GRADE, frm, to, Direction.UP if to > frm else Direction.DOWN, at, at,
                  "Neutral", "Buy" if to > frm else "Sell", "band")


def digest(tokens: int = 2) -> Message:
    period = period_containing(SCHEDULE, NOW - timedelta(hours=1))
    changes = [grade(Token(i, f"<T{i}>", f"Token & {i}"), 50, 70 if i % 2 else 30, i % 20 + 1)
               for i in range(1, tokens + 1)]
    return render([digest_change(DEST, build_summary(SCHEDULE, period, changes, {}), NOW)])


def test_telegram_scheduled_digest_bold_title_and_section_heads_escaped() -> None:
    html = "\n".join(line.html for line in alert_lines(digest()))
    visible, entities = parse_html(html)
    lines = visible.splitlines()
    assert lines[0] == "Daily digest · 2026-11-29 09:00 → 2026-11-30 09:00 UTC"
    assert "<T1> (Token & 1): 1 change" in lines
    bold = {visible[e["offset"]:e["offset"] + e["length"]] for e in entities
            if e["type"] == "bold"}
    assert bold == {lines[0], "Biggest upgrades:", "Biggest downgrades:", "Changes by token:"}


def test_telegram_scheduled_digest_long_splits_between_lines() -> None:
    chunks = html_chunks(alert_lines(digest(tokens=60)), limit=500)
    assert len(chunks) > 1
    assert all(parse_html(chunk)[0] for chunk in chunks)


def test_discord_scheduled_digest_is_one_embed_within_limits() -> None:
    embed = alert_embed(digest(tokens=60))
    assert embed.title == "Daily digest · 2026-11-29 09:00 → 2026-11-30 09:00 UTC"
    assert embed.description is not None and "**Biggest upgrades:**" in embed.description
    assert embed.footer.text is not None and embed.footer.text.startswith("Scheduled digest")
    assert len(embed) <= EMBED_TOTAL_MAX


def test_console_scheduled_digest_prints_title_with_key_then_indented_lines() -> None:
    text = format_message(digest(), Destination("console", "default"), "akey", NOW)
    first, *rest = text.splitlines()
    assert first.endswith("• Daily digest · 2026-11-29 09:00 → 2026-11-30 09:00 UTC  [akey]")
    assert "    Changes by token:" in rest
    assert "" in rest and all(line == line.rstrip() for line in rest)  # no trailing blanks


def test_webhook_scheduled_digest_payload_carries_the_summary() -> None:
    payload = message_payload(digest(), "akey")
    assert payload["type"] == "scheduled_digest" and payload["alerts"] == []
    assert payload["digest"]["key"] == "daily:2026-11-30"
    assert payload["digest"]["changes"] == 2
    json.dumps(payload)
