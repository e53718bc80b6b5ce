"""Discord embeds and text of alerts, digests and command replies, within Discord's limits.

Untrusted text (token names, symbols, labels, user input) is neutralized: markdown escaped
and mentions broken, so it can neither ping nor format. Every text is clipped to its limit.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import discord

from alertbot.domain.charts import ChartImage
from alertbot.domain.commands import Reply
from alertbot.domain.models import Change, Direction, Kind, Message
from alertbot.domain.render import ARROW, headline, movement, when

# Embed limits, all inclusive and counted after trimming whitespace: discord-api-docs
# developers/resources/message.mdx "Embed Limits" (reference/platforms.md §1). Breaking one
# gets 400 / 50035 Invalid Form Body, so every text is clipped before it is sent.
EMBED_TITLE_MAX = 256
EMBED_DESCRIPTION_MAX = 4096
EMBED_FIELDS_MAX = 25
EMBED_FIELD_NAME_MAX = 256
EMBED_FIELD_VALUE_MAX = 1024
EMBED_FOOTER_MAX = 2048
EMBED_AUTHOR_NAME_MAX = 256
EMBED_TOTAL_MAX = 6000
"""Sum of title, description, field names and values, footer and author name."""
CONTENT_MAX = 2000
"""Message content limit (message.mdx)."""

COLOUR_UP = discord.Colour(0x2ECC71)
COLOUR_DOWN = discord.Colour(0xE74C3C)
COLOUR_NEUTRAL = discord.Colour(0x5865F2)
FOOTER = "Token Metrics signals and grades · alertbot"
ELLIPSIS = "…"


def clip(text: str, limit: int) -> str:
    """Trimmed text of at most `limit` characters, ending in … when cut."""
    text = text.strip()
    if len(text) <= limit:
        return text
    if limit <= len(ELLIPSIS):
        return text[:limit]
    return text[: limit - len(ELLIPSIS)].rstrip() + ELLIPSIS


def no_pings(text: str) -> str:
    """Text whose @everyone, @here and <@…> mentions no longer parse as mentions."""
    # A zero-width space after every @ breaks the mention syntax; AllowedMentions.none()
    # already stops the ping, this also stops the mention from rendering.
    return text.replace("@", "@\u200b")


def neutralize(text: str) -> str:
    """Untrusted text that can neither ping nor inject markdown."""
    return no_pings(discord.utils.escape_markdown(text))


@dataclass(slots=True)
class EmbedParts:
    """Everything an alert embed shows, before clipping to Discord's limits."""

    title: str
    description: str
    fields: list[tuple[str, str, bool]] = field(default_factory=list)
    footer: str = FOOTER
    url: str = ""
    colour: discord.Colour = COLOUR_NEUTRAL
    timestamp: datetime | None = None
    description_lines: tuple[str, ...] = ()
    """When set, the description is cut at line boundaries with an "and N more" line."""


def _fit_lines(lines: Sequence[str], budget: int) -> str:
    """As many whole lines as fit in `budget`, then "… and N more"."""
    clipped = [clip(line, EMBED_DESCRIPTION_MAX) for line in lines]
    whole = "\n".join(clipped)
    if len(whole) <= budget:
        return whole
    prefix = [0]
    for line in clipped:
        prefix.append(prefix[-1] + len(line))
    more = ""
    for kept in range(len(clipped) - 1, -1, -1):
        more = f"{ELLIPSIS} and {len(clipped) - kept} more"
        # `kept` lines, a newline after each, then the "more" line.
        if prefix[kept] + kept + len(more) <= budget:
            return "\n".join([*clipped[:kept], more])
    return clip(more, budget)


def fit(parts: EmbedParts) -> discord.Embed:
    """An embed within every documented limit (each field and the 6000 total)."""
    title = clip(parts.title, EMBED_TITLE_MAX)
    footer = clip(parts.footer, EMBED_FOOTER_MAX)
    fields = [(clip(n, EMBED_FIELD_NAME_MAX) or "\u200b", clip(v, EMBED_FIELD_VALUE_MAX) or "—", i)
              for n, v, i in parts.fields[:EMBED_FIELDS_MAX]]
    fixed = len(title) + len(footer)
    # Fields are the small structured part; the description gives way first.
    while fields and fixed + sum(len(n) + len(v) for n, v, _ in fields) > EMBED_TOTAL_MAX:
        fields.pop()
    room = EMBED_TOTAL_MAX - fixed - sum(len(n) + len(v) for n, v, _ in fields)
    budget = max(0, min(EMBED_DESCRIPTION_MAX, room))
    if parts.description_lines:
        description = _fit_lines(parts.description_lines, budget)
    else:
        description = clip(parts.description, budget)
    embed = discord.Embed(title=title or None, description=description or None,
                          url=parts.url or None, colour=parts.colour,
                          timestamp=parts.timestamp)
    for name, value, inline in fields:
        embed.add_field(name=name, value=value, inline=inline)
    if footer:
        embed.set_footer(text=footer)
    return embed


def _colour(direction: Direction | None) -> discord.Colour:
    if direction is Direction.UP:
        return COLOUR_UP
    if direction is Direction.DOWN:
        return COLOUR_DOWN
    return COLOUR_NEUTRAL


def _side(change: Change, label: str, value: float) -> str:
    if change.kind in (Kind.SIGNAL, Kind.HOURLY):
        return neutralize(label)
    return f"{neutralize(label)} ({value:.1f})" if label else f"{value:.1f}"


def _change_parts(change: Change) -> EmbedParts:
    token = change.token
    return EmbedParts(
        title=no_pings(headline(change)),
        description=f"**{neutralize(token.name)}** ({neutralize(token.symbol)})\n"
                    f"{ARROW[change.direction]} **{neutralize(movement(change))}**",
        fields=[("From", _side(change, change.from_label, change.from_value), True),
                ("To", _side(change, change.to_label, change.to_value), True),
                ("Kind", change.kind.label, True),
                ("As of", when(change.source_ts, change.kind), True)],
        url=token.link,
        colour=_colour(change.direction),
        timestamp=change.source_ts,
    )


def alert_embed(message: Message) -> discord.Embed:
    """The embed of one alert, a digest (ONE embed, line per change) or a lookup answer."""
    if message.is_digest:
        parts = EmbedParts(
            title=no_pings(message.title),
            description="",
            description_lines=tuple(neutralize(line) for line in message.lines),
            footer=f"Held by this channel's throttle or quiet hours · {FOOTER}",
            colour=_colour(message.direction),
            timestamp=message.timestamp,
        )
    elif message.scheduled:
        parts = EmbedParts(
            title=no_pings(message.title),
            description="",
            description_lines=tuple(
                f"**{neutralize(line)}**" if line.endswith(":") else neutralize(line)
                for line in message.lines),
            footer=f"Scheduled digest · {FOOTER}",
            colour=_colour(None),
            timestamp=message.timestamp,
        )
    elif len(message.changes) == 1 and message.changes[0].kind is not Kind.OPS:
        parts = _change_parts(message.changes[0])
    else:
        parts = EmbedParts(
            title=no_pings(message.title),
            description="",
            description_lines=tuple(neutralize(line) for line in message.lines),
            url=message.link,
            colour=_colour(message.direction),
            timestamp=message.timestamp if message.timestamp.year > 1970 else None,
        )
    return fit(parts)


def reply_content(reply: Reply) -> str:
    """Text part of a reply (title in bold), within Discord's content limit."""
    parts = [f"**{neutralize(reply.title)}**"] if reply.title else []
    parts.extend(neutralize(line) for line in reply.lines)
    return clip("\n".join(parts), CONTENT_MAX)


def chart_embed(image: ChartImage, *, title: str = "") -> discord.Embed:
    """An embed showing an attached chart, its caption (the text alternative) as description."""
    embed = discord.Embed(title=clip(no_pings(title), EMBED_TITLE_MAX) or None,
                          description=clip(neutralize(image.caption), EMBED_DESCRIPTION_MAX),
                          colour=COLOUR_NEUTRAL)
    embed.set_image(url=f"attachment://{image.filename}")
    embed.set_footer(text=FOOTER)
    return embed


def chart_file(image: ChartImage) -> discord.File:
    """The chart as an upload, named as the embed refers to it."""
    return discord.File(io.BytesIO(image.png), filename=image.filename)
