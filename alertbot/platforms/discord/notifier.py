"""Discord: one embed per alert (or digest), through the bot or through an incoming webhook.

Bot destinations are channel (or thread) ids and are sent with the logged-in discord.py client;
the outbox key is the message nonce with enforce_nonce, so a resend after a crash returns the
message Discord already has instead of posting a second one. Webhook destinations carry their
secret URL as the Target address and are sent with `discord.Webhook` over the shared session.
Every discord.py and aiohttp error is translated into DeliveryError here.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp
import discord

from alertbot.domain.address import validate_webhook_address
from alertbot.domain.models import Change, Destination, Direction, Kind, Message
from alertbot.domain.render import ARROW, headline, movement, when
from alertbot.domain.retry_after import parse_retry_after
from alertbot.platforms.discord.limits import DISCORD_GLOBAL, DISCORD_PER_CHANNEL
from alertbot.ports.notifier import Delivered, DeliveryError, Limit, Target
from alertbot.services.pacing import DISCORD_PER_WEBHOOK

log = logging.getLogger(__name__)

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
NONCE_MAX = 25
"""Create Message `nonce` (message.mdx); the dispatcher's keys are 24 characters."""

COLOUR_UP = discord.Colour(0x2ECC71)
COLOUR_DOWN = discord.Colour(0xE74C3C)
COLOUR_NEUTRAL = discord.Colour(0x5865F2)
FOOTER = "Token Metrics signals and grades · alertbot"
ELLIPSIS = "…"

# The bot's least privilege (reference/platforms.md §1 "Permissions and invite URL"):
# View Channel + Send Messages + Embed Links = 19456; threads also need Send Messages in Threads.
BOT_PERMISSIONS = discord.Permissions(view_channel=True, send_messages=True, embed_links=True)
INVITE_SCOPES = ("bot", "applications.commands")
_NEEDED_IN_CHANNEL = (("view_channel", "View Channel"), ("send_messages", "Send Messages"),
                      ("embed_links", "Embed Links"))
_NEEDED_IN_THREAD = (("view_channel", "View Channel"),
                     ("send_messages_in_threads", "Send Messages in Threads"),
                     ("embed_links", "Embed Links"))

# discord.Webhook.from_url accepts exactly this shape (webhook/async_.py).
_WEBHOOK_URL = re.compile(
    r"^https://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/api(?:/v\d+)?/webhooks/"
    r"(\d{17,20})/([A-Za-z0-9.\-_]{60,})/?$")
WEBHOOK_CHAT_PREFIX = "wh-"
"""Chat ids of webhook destinations are `address_id(url)`, never the URL itself."""

LOGIN_WAIT = 10.0
"""Seconds a send waits for the bot to log in before it is retried later."""

# Discord JSON error codes (topics/opcodes-and-status-codes.mdx).
UNKNOWN_CHANNEL = 10003
UNKNOWN_GUILD = 10004
UNKNOWN_WEBHOOK = 10015
MISSING_ACCESS = 50001
CANNOT_MESSAGE_USER = 50007
MISSING_PERMISSIONS = 50013
INVALID_WEBHOOK_TOKEN = 50027
INVALID_FORM_BODY = 50035
_GONE_REASONS = {
    UNKNOWN_CHANNEL: "the channel was deleted (Discord 10003 Unknown Channel)",
    UNKNOWN_GUILD: "the bot is no longer in this server (Discord 10004 Unknown Guild)",
    MISSING_ACCESS: "the bot can no longer see this channel (Discord 50001 Missing Access): "
                    "it was removed from the server or View Channel was taken away",
    CANNOT_MESSAGE_USER: "Discord does not let the bot message this user (50007)",
}


# ---------------------------------------------------------------------------------- embeds


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


# ---------------------------------------------------------------------------------- addresses


def is_webhook_destination(destination: Destination) -> bool:
    """Whether a Discord destination is an incoming webhook (its chat id is a hash)."""
    return destination.chat_id.startswith(WEBHOOK_CHAT_PREFIX)


def validate_discord_webhook_url(url: str) -> str:
    """A Discord incoming-webhook URL; raises ValueError without echoing it."""
    text = validate_webhook_address(url)
    if not _WEBHOOK_URL.match(text):
        raise ValueError("expected a Discord webhook URL "
                         "(https://discord.com/api/webhooks/ID/TOKEN)")
    return text


def invite_url(application_id: int) -> str:
    """OAuth2 invite with the least privilege the bot needs and slash-command scope."""
    return discord.utils.oauth_url(application_id, permissions=BOT_PERMISSIONS,
                                   scopes=INVITE_SCOPES)


# ---------------------------------------------------------------------------------- errors


def _http_detail(exc: discord.HTTPException) -> str:
    text = " ".join(str(exc.text or "").split())[:200]
    return f"HTTP {exc.status}, code {exc.code}" + (f": {text}" if text else "")


def _retry_after(exc: discord.HTTPException) -> float | None:
    headers = exc.response.headers if exc.response is not None else {}
    now = datetime.now(UTC)
    for name in ("X-RateLimit-Reset-After", "Retry-After"):
        seconds = parse_retry_after(headers.get(name), now)
        if seconds is not None:
            return seconds
    return None


def missing_permissions_reason(missing: Sequence[str], thread: bool) -> str:
    """What moderators must grant after 50013 Missing Permissions."""
    if not missing:
        needed = _NEEDED_IN_THREAD if thread else _NEEDED_IN_CHANNEL
        missing = [label for _, label in needed]
        lead = "the bot lacks a permission here; it needs"
    else:
        lead = "the bot is missing"
    where = "this thread" if thread else "this channel"
    return (f"{lead} {', '.join(missing)} in {where} (Discord 50013 Missing Permissions); "
            f"a moderator must grant it, then run /subscribe again")


def translate_error(exc: BaseException, *, webhook: bool = False,
                    missing: Sequence[str] = (), thread: bool = False) -> DeliveryError:
    """Any discord.py or transport error as a DeliveryError (no library exception escapes)."""
    if isinstance(exc, discord.RateLimited):
        return DeliveryError(f"Discord rate limit (retry in {exc.retry_after:.1f}s)",
                             rate_limited=True, retry_after=exc.retry_after)
    if isinstance(exc, discord.HTTPException):
        detail = _http_detail(exc)
        code = exc.code
        if exc.status == 429:
            scope = exc.response.headers.get("X-RateLimit-Scope", "") if exc.response else ""
            global_limit = bool(exc.response is not None and (
                exc.response.headers.get("X-RateLimit-Global") or scope == "global"))
            return DeliveryError(f"Discord rate limit ({detail})", rate_limited=True,
                                 retry_after=_retry_after(exc), global_limit=global_limit)
        if exc.status >= 500:
            return DeliveryError(f"Discord server error ({detail})", retryable=True)
        if webhook:
            if exc.status == 404 or code == UNKNOWN_WEBHOOK:
                return DeliveryError("the Discord webhook was deleted (Discord 10015 Unknown "
                                     "Webhook); create a new one and subscribe it again",
                                     destination_gone=True)
            if exc.status == 401 or code == INVALID_WEBHOOK_TOKEN:
                return DeliveryError("the Discord webhook token is no longer valid (Discord "
                                     "50027); create a new webhook and subscribe it again",
                                     destination_gone=True)
            if exc.status == 403:
                return DeliveryError(f"Discord refused the webhook ({detail})",
                                     destination_gone=True)
        if code == MISSING_PERMISSIONS:
            return DeliveryError(missing_permissions_reason(missing, thread),
                                 destination_gone=True)
        if code in _GONE_REASONS:
            return DeliveryError(_GONE_REASONS[code], destination_gone=True)
        if code == INVALID_FORM_BODY:
            return DeliveryError(f"Discord rejected the message ({detail})")
        return DeliveryError(f"Discord refused the message ({detail})")
    if isinstance(exc, TimeoutError):
        return DeliveryError("Discord did not answer in time", retryable=True)
    if isinstance(exc, aiohttp.ClientError | OSError):
        # The text of a transport error can contain a webhook URL: keep only its type.
        return DeliveryError(f"Discord unreachable ({type(exc).__name__})", retryable=True)
    return DeliveryError(f"unexpected Discord error ({type(exc).__name__})", retryable=True)


# ---------------------------------------------------------------------------------- notifier


class DiscordNotifier:
    """Sends alerts to Discord channels, threads and incoming webhooks."""

    platform = "discord"

    def __init__(self, session: aiohttp.ClientSession, *, client: discord.Client | None = None,
                 login: Callable[[], Awaitable[None]] | None = None,
                 login_wait: float = LOGIN_WAIT) -> None:
        self._session = session
        self._client = client
        # Idempotent: `run --once` has no gateway runner, so the first send logs in.
        self._login = login
        self._login_wait = login_wait

    def limits(self, destination: Destination) -> Sequence[tuple[Limit, str]]:
        """Per-webhook for webhooks; global plus per-channel (thread) for the bot."""
        if is_webhook_destination(destination):
            return ((DISCORD_PER_WEBHOOK, destination.chat_id),)
        channel = destination.thread_id or destination.chat_id
        return ((DISCORD_GLOBAL, "bot"), (DISCORD_PER_CHANNEL, channel))

    async def send(self, target: Target, message: Message, *, key: str,
                   silent: bool) -> Delivered:
        """Post one embed; raises DeliveryError on any failure."""
        embed = alert_embed(message)
        if target.address:
            return await self._send_webhook(target, embed, silent)
        if is_webhook_destination(target.destination):
            raise DeliveryError("this Discord webhook destination has no URL stored",
                                destination_gone=True)
        return await self._send_bot(target.destination, embed, key[:NONCE_MAX], silent)

    async def _client_ready(self) -> discord.Client:
        if self._client is None:
            raise DeliveryError("DISCORD_BOT_TOKEN is not set; only Discord webhook "
                                "destinations can be served", retryable=True)
        if self._login is not None:
            try:
                await asyncio.wait_for(self._login(), self._login_wait)
            except discord.LoginFailure:
                raise DeliveryError("Discord rejected DISCORD_BOT_TOKEN",
                                    retryable=True) from None
            except (discord.DiscordException, aiohttp.ClientError, OSError,
                    TimeoutError) as exc:
                raise DeliveryError(f"the Discord bot could not log in ({type(exc).__name__})",
                                    retryable=True) from None
        return self._client

    async def _send_bot(self, destination: Destination, embed: discord.Embed, nonce: str,
                        silent: bool) -> Delivered:
        client = await self._client_ready()
        thread = bool(destination.thread_id)
        try:
            channel_id = int(destination.thread_id or destination.chat_id)
        except ValueError:
            raise DeliveryError("not a Discord channel id", destination_gone=True) from None
        channel = client.get_partial_messageable(channel_id)
        try:
            sent = await channel.send(embed=embed, nonce=nonce, silent=silent,
                                      allowed_mentions=discord.AllowedMentions.none())
        except discord.Forbidden as exc:
            missing = (self._missing_permissions(client, channel_id, thread)
                       if exc.code == MISSING_PERMISSIONS else ())
            raise translate_error(exc, missing=missing, thread=thread) from None
        except (discord.DiscordException, aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise translate_error(exc, thread=thread) from None
        return Delivered(message_id=str(sent.id))

    @staticmethod
    def _missing_permissions(client: discord.Client, channel_id: int,
                             thread: bool) -> list[str]:
        """Which required permissions the bot lacks, from the gateway cache (if any)."""
        channel = client.get_channel(channel_id)
        if not isinstance(channel, discord.abc.GuildChannel | discord.Thread):
            return []
        try:
            permissions = channel.permissions_for(channel.guild.me)
        except AttributeError:  # the bot's member is not cached yet
            return []
        needed = _NEEDED_IN_THREAD if thread else _NEEDED_IN_CHANNEL
        return [label for attr, label in needed if not getattr(permissions, attr)]

    async def _send_webhook(self, target: Target, embed: discord.Embed,
                            silent: bool) -> Delivered:
        address = target.address or ""
        try:
            webhook = discord.Webhook.from_url(address, session=self._session)
        except ValueError:
            raise DeliveryError("the stored address is not a Discord webhook URL",
                                destination_gone=True) from None
        thread_id = target.destination.thread_id
        try:
            if thread_id:
                sent = await webhook.send(embed=embed, wait=True, silent=silent,
                                          allowed_mentions=discord.AllowedMentions.none(),
                                          thread=discord.Object(id=int(thread_id)))
            else:
                sent = await webhook.send(embed=embed, wait=True, silent=silent,
                                          allowed_mentions=discord.AllowedMentions.none())
        except ValueError:
            raise DeliveryError("not a Discord thread id", destination_gone=True) from None
        except (discord.DiscordException, aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise translate_error(exc, webhook=True) from None
        return Delivered(message_id=str(sent.id))

    async def start(self) -> None:
        """Log the bot in (REST only) before the first paced send, when there is a bot."""
        if self._client is None:
            return
        try:
            await self._client_ready()
        except DeliveryError as exc:
            log.warning("Discord not ready yet: %s", exc.reason)

    async def close(self) -> None:
        """The client and the shared session are closed by their owners."""
