"""Discord: one embed per alert (or digest), through the bot or through an incoming webhook.

Bot destinations are channel (or thread) ids and are sent with the logged-in discord.py client;
the outbox key is the message nonce with enforce_nonce, so a resend returns the message Discord
already has instead of posting a second one. Webhook destinations carry their secret URL as the
Target address and are sent with `discord.Webhook` over the shared session.
Embeds come from `embeds`; every discord.py and aiohttp error becomes a DeliveryError
through `errors`. A single alert sent by the bot carries the Chart, Why and Mute buttons
(`buttons`), built at send time from the outbox row's change and key; webhook messages carry
none, since a webhook cannot receive the presses.

What holds:
- Bot mode: exactly once while the resend comes within the few minutes Discord checks a
  nonce for uniqueness (a timeout retried, a restart after a crash). A resend later than
  that (the bot down for longer after a crash mid-send) can post a second message.
- Webhook mode: at least once. Execute Webhook takes no nonce, so a send that timed out
  after Discord accepted it, or was in flight when the process was killed, is posted again.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
import discord

from alertbot.domain.address import validate_webhook_address
from alertbot.domain.buttons import Button
from alertbot.domain.models import Destination, Message
from alertbot.platforms.discord.buckets import pace_create_message
from alertbot.platforms.discord.buttons import button_view, release
from alertbot.platforms.discord.embeds import alert_embed, chart_file
from alertbot.platforms.discord.errors import (
    MISSING_PERMISSIONS,
    SEND_ERRORS,
    login_error,
    translate_error,
)
from alertbot.platforms.discord.limits import (
    DISCORD_GLOBAL,
    DISCORD_PER_CHANNEL,
    DISCORD_PER_WEBHOOK,
)
from alertbot.platforms.discord.permissions import missing_permissions
from alertbot.ports.lifecycle import reraise_if_cancelling
from alertbot.ports.notifier import Delivered, DeliveryError, Limit, Target
from alertbot.services.buttons import ButtonCore

log = logging.getLogger(__name__)

NONCE_MAX = 25
"""Create Message `nonce` (message.mdx); the dispatcher's keys are 24 characters."""

# discord.Webhook.from_url accepts exactly this shape (webhook/async_.py).
_WEBHOOK_URL = re.compile(
    r"^https://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/api(?:/v\d+)?/webhooks/"
    r"(\d{17,20})/([A-Za-z0-9.\-_]{60,})/?$")
WEBHOOK_CHAT_PREFIX = "wh-"
"""Chat ids of webhook destinations are `address_id(url)`, never the URL itself."""

LOGIN_WAIT = 10.0
"""Seconds a send waits for the bot to log in before it is retried later."""


# ---------------------------------------------------------------------------------- addresses


def is_webhook_destination(destination: Destination) -> bool:
    """Whether a Discord destination is an incoming webhook (its chat id is a hash)."""
    return destination.chat_id.startswith(WEBHOOK_CHAT_PREFIX)


def validate_discord_webhook_url(url: str) -> str:
    """A Discord incoming-webhook URL; raises ValueError without echoing it."""
    text = validate_webhook_address(url)
    match = _WEBHOOK_URL.match(text)
    if not match:
        raise ValueError("expected a Discord webhook URL "
                         "(https://discord.com/api/webhooks/ID/TOKEN)")
    # One canonical form: the same webhook under discordapp.com, ptb., canary. or an API
    # version is the same destination.
    return f"https://discord.com/api/webhooks/{match.group(1)}/{match.group(2)}"


# ---------------------------------------------------------------------------------- notifier


class DiscordNotifier:
    """Sends alerts to Discord channels, threads and incoming webhooks."""

    platform = "discord"

    def __init__(self, session: aiohttp.ClientSession, *, client: discord.Client | None = None,
                 login: Callable[[], Awaitable[None]] | None = None,
                 login_wait: float = LOGIN_WAIT, buttons: ButtonCore | None = None) -> None:
        self._session = session
        self._buttons = buttons
        self._client = client
        if client is not None:
            pace_create_message(client.http)
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
        extra: dict[str, Any] = {}
        if message.image is not None:
            # A grade alert's chart: attached to the message, shown inside the embed.
            embed.set_image(url=f"attachment://{message.image.filename}")
            extra["file"] = chart_file(message.image)
        if target.address:
            return await self._send_webhook(target, embed, silent, extra)
        if is_webhook_destination(target.destination):
            raise DeliveryError("this Discord webhook destination has no URL stored",
                                destination_gone=True)
        buttons = await self._keyboard(target.destination, message, key)
        return await self._send_bot(target.destination, embed, key[:NONCE_MAX], silent, extra,
                                    buttons)

    async def _keyboard(self, destination: Destination, message: Message,
                        key: str) -> tuple[Button, ...]:
        """The alert's buttons; an alert goes out without them rather than not at all."""
        if self._buttons is None:
            return ()
        try:
            return await self._buttons.keyboard(destination, message, key)
        except Exception:
            reraise_if_cancelling()
            log.warning("alert %s to %s goes without buttons: they could not be made", key,
                        destination, exc_info=True)
            return ()

    async def _client_ready(self) -> discord.Client:
        if self._client is None:
            raise DeliveryError("DISCORD_BOT_TOKEN is not set; only Discord webhook "
                                "destinations can be served", retryable=True)
        if self._login is not None:
            try:
                # asyncio.timeout, not wait_for: Python 3.11's wait_for returns the login's
                # error when it is cancelled at the same moment, swallowing the cancellation.
                async with asyncio.timeout(self._login_wait):
                    await self._login()
            except SEND_ERRORS as exc:
                raise login_error(exc) from None
        return self._client

    async def _send_bot(self, destination: Destination, embed: discord.Embed, nonce: str,
                        silent: bool, extra: dict[str, Any],
                        buttons: Sequence[Button] = ()) -> Delivered:
        client = await self._client_ready()
        thread = bool(destination.thread_id)
        try:
            channel_id = int(destination.thread_id or destination.chat_id)
        except ValueError:
            raise DeliveryError("not a Discord channel id", destination_gone=True) from None
        channel = client.get_partial_messageable(channel_id)
        view = button_view(buttons)
        try:
            if view is not None:
                extra = {**extra, "view": view}
            sent = await channel.send(embed=embed, nonce=nonce, silent=silent,
                                      allowed_mentions=discord.AllowedMentions.none(), **extra)
        except discord.Forbidden as exc:
            missing = (self._missing_permissions(client, channel_id, thread)
                       if exc.code == MISSING_PERMISSIONS else ())
            raise translate_error(exc, missing=missing, thread=thread) from None
        except SEND_ERRORS as exc:
            raise translate_error(exc, thread=thread) from None
        finally:
            release(view)
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
        return missing_permissions(permissions, thread=thread)

    async def _send_webhook(self, target: Target, embed: discord.Embed,
                            silent: bool, extra: dict[str, Any]) -> Delivered:
        address = target.address or ""
        try:
            webhook = discord.Webhook.from_url(address, session=self._session)
        except ValueError:
            raise DeliveryError("the stored address is not a Discord webhook URL",
                                destination_gone=True) from None
        thread_id = target.destination.thread_id
        try:
            thread = discord.Object(id=int(thread_id)) if thread_id else None
        except ValueError:
            raise DeliveryError("not a Discord thread id", destination_gone=True) from None
        try:
            if thread is not None:
                sent = await webhook.send(embed=embed, wait=True, silent=silent,
                                          allowed_mentions=discord.AllowedMentions.none(),
                                          thread=thread, **extra)
            else:
                sent = await webhook.send(embed=embed, wait=True, silent=silent,
                                          allowed_mentions=discord.AllowedMentions.none(),
                                          **extra)
        except SEND_ERRORS as exc:
            raise translate_error(exc, webhook=True) from None
        except ValueError:
            # json.JSONDecodeError: discord.py parses the answer itself. The message may or
            # may not have been posted; webhooks carry no nonce, so a retry can duplicate.
            raise DeliveryError("Discord answered the webhook with a malformed response",
                                retryable=True) from None
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
