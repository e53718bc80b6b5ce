"""Discord embeds and reply text: clipping, neutralizing, limits (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import discord

from alertbot.domain.commands import Reply
from alertbot.domain.models import Change, Direction, Kind, Token, make_change_id
from alertbot.domain.render import render_change, render_digest
from alertbot.platforms.discord.embeds import (
    CONTENT_MAX,
    EMBED_TOTAL_MAX,
    alert_embed,
    clip,
    neutralize,
    no_pings,
    reply_content,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
BTC = Token(3375, "BTC", "Bitcoin", "bitcoin")


def flip(token: Token = BTC, day: int = 0) -> Change:
    source = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(days=day)
    return Change(make_change_id(token.token_id, Kind.SIGNAL, -1, 1, source), token,
                  Kind.SIGNAL, -1.0, 1.0, Direction.UP, source, NOW, "bearish", "bullish",
                  "flip")


def test_discord_embed_type_is_rich_embed() -> None:
    assert isinstance(alert_embed(render_change(flip())), discord.Embed)


def test_clip_cuts_with_ellipsis_within_the_limit() -> None:
    assert clip("  short  ", 10) == "short"
    assert clip("a" * 20, 10) == "a" * 9 + "…"
    assert clip("abc", 1) == "a"


def test_no_pings_breaks_every_mention() -> None:
    text = no_pings("@everyone @here <@123> <@&456>")
    assert "@everyone" not in text and "@here" not in text and "<@1" not in text


def test_neutralize_escapes_markdown_and_mentions() -> None:
    assert neutralize("**bold** @here") == "\\*\\*bold\\*\\* @\u200bhere"


def test_alert_embed_huge_digest_stays_within_the_total_limit() -> None:
    tokens = [Token(10_000 + i, f"S{i}" + "X" * 300, "Long name " * 200, f"t{i}")
              for i in range(400)]
    embed = alert_embed(render_digest([flip(t, day=i % 20) for i, t in enumerate(tokens)]))
    assert len(embed) <= EMBED_TOTAL_MAX
    assert (embed.description or "").splitlines()[-1].startswith("… and ")


def test_reply_content_bold_title_neutralized_and_clipped() -> None:
    assert reply_content(Reply(("@everyone",), title="Done")) == "**Done**\n@\u200beveryone"
    assert len(reply_content(Reply(("x" * 5000,)))) == CONTENT_MAX
