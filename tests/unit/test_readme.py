"""The README: example alerts equal to the renderers, and internal links that resolve."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime
from pathlib import Path

from alertbot.domain.models import Change, Direction, Kind, Token
from alertbot.domain.render import render
from alertbot.platforms.discord.embeds import alert_embed
from alertbot.platforms.telegram.format import alert_lines, html_chunks

README = Path(__file__).resolve().parents[2] / "README.md"
FLIP = Change("a" * 32, Token(3375, "BTC", "Bitcoin", "bitcoin"), Kind.SIGNAL, -1.0, 1.0,
              Direction.UP, datetime(2026, 11, 27, tzinfo=UTC),
              datetime(2026, 11, 27, 0, 4, tzinfo=UTC), "bearish", "bullish", "flip")


def example(language: str) -> str:
    """The fenced block in `language` under "### What an alert looks like"."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("\n### What an alert looks like\n"):]
    section = section[:section.index("\n## ")]
    [block] = re.findall(rf"^```{language}\n(.*?)^```", section, re.MULTILINE | re.DOTALL)
    return str(block)


def test_readme_telegram_example_is_the_rendered_alert_as_the_chat_shows_it() -> None:
    [message] = html_chunks(alert_lines(render([FLIP])))
    assert message.startswith("<b>▲ BTC daily signal turned bullish</b>\n")
    assert '<a href="https://app.tokenmetrics.com/bitcoin">Open on Token Metrics</a>' in message
    visible = html.unescape(re.sub(r"<[^>]+>", "", message))
    assert example("text") == visible + "\n"


def test_readme_discord_example_is_the_rendered_embed() -> None:
    assert json.loads(example("json")) == alert_embed(render([FLIP])).to_dict()


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_readme_every_internal_link_names_a_heading() -> None:
    text = README.read_text(encoding="utf-8")
    outside_code = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    anchors: set[str] = set()
    for heading in re.findall(r"^#{1,6} (.+)$", outside_code, re.MULTILINE):
        slug, n = _slug(heading), 1
        while slug in anchors:  # repeated headings get -1, -2, … as on GitHub
            slug = f"{_slug(heading)}-{n}"
            n += 1
        anchors.add(slug)
    links = set(re.findall(r"\]\(#([^)]+)\)", outside_code))
    assert links and links <= anchors, sorted(links - anchors)
