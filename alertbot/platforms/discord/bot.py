"""The Discord adapter's lifecycle: login, gateway, command sync, leaving guilds, checks.

One discord.py client serves both directions: the notifier sends alerts through its REST
session (so sends wait for the login), and the gateway delivers slash commands and guild
events. Webhook-only installations need no bot token and no client at all.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Collection, Sequence
from contextlib import suppress
from typing import Any

import aiohttp
import discord
import discord.gateway
import discord.http
import yarl
from discord import app_commands

from alertbot.platforms.discord.buttons import DiscordButtons
from alertbot.platforms.discord.commands import DiscordCommands, guild_label
from alertbot.platforms.discord.notifier import is_webhook_destination
from alertbot.platforms.discord.permissions import invite_url
from alertbot.ports.clock import Clock
from alertbot.ports.store import Destinations, PlatformStore
from alertbot.services.buttons import ButtonCore
from alertbot.services.commands import CommandCore

log = logging.getLogger(__name__)

SYNC_META_KEY = "discord.command_sync"
"""Store meta: application, scope and hash of the last command sync."""
MAX_RATELIMIT_WAIT = 30.0
"""discord.py's minimum; longer 429 waits become a DeliveryError the dispatcher schedules."""
LOGIN_RETRY_MAX = 60.0
LEFT_GUILD_REASON = ("the bot was removed from this Discord server; invite it again and run "
                     "/subscribe to resume")
CHECK_TIMEOUT = 20.0
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ClientError, OSError, TimeoutError, discord.HTTPException)
"""Failures of a REST call that a later try can cure; ServerDisconnectedError is a
ClientError, neither an OSError nor an HTTPException."""


def point_discord_at(api_url: str, gateway_url: str) -> None:
    """Send discord.py's REST (bot, interactions, webhooks) and gateway traffic here."""
    # Route.BASE is read when each request's route is built, and the webhook adapter uses
    # the same Route, so one assignment covers every REST call.
    discord.http.Route.BASE = api_url.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
    # The bot never joins voice: the missing voice libraries are not worth a warning.
    discord.VoiceClient.warn_nacl = False
    discord.VoiceClient.warn_dave = False


def _intents() -> discord.Intents:
    intents = discord.Intents.none()
    intents.guilds = True  # guild and channel cache: who owns which channel, bot permissions
    return intents


def command_tree_hash(tree: app_commands.CommandTree[Any], application_id: int,
                      scope: str) -> str:
    """Identity of what a sync would upload; equal hashes mean Discord already has it."""
    payload = sorted((c.to_dict(tree) for c in tree.get_commands()),
                     key=lambda c: str(c.get("name")))
    raw = json.dumps({"app": application_id, "scope": scope, "commands": payload},
                     sort_keys=True, separators=(",", ":"), default=str)
    return f"{scope}|{hashlib.sha256(raw.encode()).hexdigest()}"


UNREACHABLE = "unreachable"
"""sync_commands' answer when a connection failure stopped it (try again later)."""


def _retryable(exc: BaseException) -> bool:
    """A connection failure, a Discord 5xx or a 429; other HTTP errors need a fix."""
    if isinstance(exc, discord.HTTPException):
        return exc.status >= 500 or exc.status == 429
    return True


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    """Wait up to `seconds` for `stop`; whether it was set."""
    with suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()
    return stop.is_set()


def _scope(guild_ids: Sequence[int]) -> str:
    return ",".join(str(g) for g in sorted(set(guild_ids))) or "global"


class DiscordBot:
    """The logged-in discord.py client with slash commands, command sync and guild events."""

    def __init__(self, token: str, store: PlatformStore, core: CommandCore, clock: Clock, *,
                 guild_ids: Sequence[int] = (), guild_ready_timeout: float = 2.0,
                 retry_initial: float = 1.0, buttons: ButtonCore | None = None) -> None:
        self.client = discord.Client(intents=_intents(),
                                     allowed_mentions=discord.AllowedMentions.none(),
                                     max_ratelimit_timeout=MAX_RATELIMIT_WAIT,
                                     guild_ready_timeout=guild_ready_timeout)
        self.tree: app_commands.CommandTree[discord.Client] = app_commands.CommandTree(
            self.client)
        DiscordCommands(core, store, clock).install(self.tree)
        self.logged_in = asyncio.Event()
        self._login_lock = asyncio.Lock()
        self.connected = asyncio.Event()
        """Set while the gateway session is up."""
        self._token = token
        self._store = store
        self._clock = clock
        self._guild_ids = tuple(guild_ids)
        self._problem = "not connected yet"
        self._retry_initial = retry_initial
        self._stopped = False
        self.client.event(self.on_ready)
        self.client.event(self.on_resumed)
        self.client.event(self.on_disconnect)
        self.client.event(self.on_guild_remove)
        if buttons is not None:
            # Component presses of alert buttons; slash commands go to the command tree.
            self.client.event(DiscordButtons(buttons).on_interaction)

    # ---------------------------------------------------------------- gateway events

    async def on_ready(self) -> None:
        """The gateway session is up and the guild cache is filled."""
        self.connected.set()
        user = self.client.user
        log.info("Discord: connected as %s in %d servers", user.name if user else "?",
                 len(self.client.guilds))

    async def on_resumed(self) -> None:
        """A dropped gateway session was resumed."""
        self.connected.set()

    async def on_disconnect(self) -> None:
        """The gateway connection dropped (discord.py reconnects by itself)."""
        self.connected.clear()
        self._problem = "gateway disconnected, reconnecting"

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        """The bot left or was removed from a guild: pause that guild's channels."""
        channel_ids = {str(c.id) for c in guild.channels} | {str(t.id) for t in guild.threads}
        paused = await self.pause_guild(guild.id, channel_ids)
        log.warning("Discord: removed from server %s; paused %d destinations", guild.id, paused)

    async def pause_guild(self, guild_id: int, channel_ids: Collection[str] = ()) -> int:
        """Pause every bot destination recorded in (or cached as part of) a guild."""
        label = guild_label(guild_id)
        now = self._clock.now()
        paused = 0
        for info in await self._store.destinations(platform="discord"):
            destination = info.destination
            if is_webhook_destination(destination):
                continue
            if info.label == label or destination.chat_id in channel_ids:
                await self._store.pause(destination, LEFT_GUILD_REASON, now)
                paused += 1
        return paused

    # ---------------------------------------------------------------- lifecycle

    def health(self) -> str | None:
        """None while the gateway is connected, else why not."""
        if self.connected.is_set() and not self.client.is_closed():
            return None
        return f"Discord: {self._problem}"

    async def run(self, stop: asyncio.Event) -> None:
        """Log in, sync commands, and keep the gateway connected until `stop`."""
        try:
            if not await self._login_until_stopped(stop):
                return
            if not await self._sync_until_stopped(stop):
                return
            gateway = asyncio.create_task(self.client.connect(reconnect=True),
                                          name="discord gateway")
            stopper = asyncio.create_task(stop.wait())
            try:
                await asyncio.wait({gateway, stopper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopper.cancel()
                if not gateway.done():
                    # The REST session stays open until the app closes, so the dispatcher
                    # can finish in-flight sends while it drains.
                    gateway.cancel()
                    # wait() never raises the child's CancelledError, so a cancellation of
                    # this job itself still propagates.
                    await asyncio.wait({gateway})
            if not stop.is_set() and not gateway.cancelled():
                exc = gateway.exception()
                self._problem = f"gateway stopped ({type(exc).__name__ if exc else 'closed'})"
                if exc is not None and not self.client.is_closed():
                    log.error("Discord gateway stopped: %s", exc)
                    raise exc
        finally:
            self.connected.clear()

    async def ensure_login(self) -> None:
        """Log the client in once; shared by the gateway runner and the notifier."""
        if self.logged_in.is_set():
            return
        async with self._login_lock:
            if self.logged_in.is_set():
                return
            try:
                await self.client.login(self._token)
            except BaseException:
                # A failed login leaves discord.py's HTTP session open; the next try opens
                # a new one. Shielded: a cancelled login must still release its session.
                with suppress(Exception):
                    await asyncio.shield(self.client.http.close())
                # Closing the session closed its connector too, and static_login would
                # build the next session on it ("Session is closed"): let it make a new one.
                self.client.http.connector = discord.utils.MISSING
                raise
            self.logged_in.set()

    async def _login_until_stopped(self, stop: asyncio.Event) -> bool:
        delay = self._retry_initial
        while not stop.is_set():
            try:
                await self.ensure_login()
                return True
            except discord.LoginFailure:
                self._problem = "Discord rejected DISCORD_BOT_TOKEN"
                log.error("Discord rejected DISCORD_BOT_TOKEN (401); Discord is disabled until "
                          "the token is fixed")
                return False
            except CONNECTION_ERRORS as exc:
                self._problem = f"cannot reach Discord ({type(exc).__name__})"
                log.warning("Discord login failed (%s); retrying in %.1fs",
                            type(exc).__name__, delay)
            if await _stopped_within(stop, delay):
                return False
            delay = min(delay * 2, LOGIN_RETRY_MAX)
        return False

    async def _sync_until_stopped(self, stop: asyncio.Event) -> bool:
        """Sync the commands, retrying while Discord cannot be reached; False if stopped."""
        delay = self._retry_initial
        while not stop.is_set():
            if await self.sync_commands() != UNREACHABLE:
                return True
            self._problem = "command sync cannot reach Discord, retrying"
            if await _stopped_within(stop, delay):
                return False
            delay = min(delay * 2, LOGIN_RETRY_MAX)
        return False

    async def sync_commands(self) -> str:
        """Upload the commands (to DISCORD_GUILD_IDS instantly, else globally) if changed."""
        application_id = self.client.application_id
        if application_id is None:
            return "not synced: no application id"
        scope = _scope(self._guild_ids)
        wanted = command_tree_hash(self.tree, application_id, scope)
        previous = await self._store.get_meta(SYNC_META_KEY)
        if previous == wanted:
            log.info("Discord: slash commands unchanged since the last sync; not re-syncing")
            return "unchanged"
        try:
            if self._guild_ids:
                for guild_id in self._guild_ids:
                    guild = discord.Object(id=guild_id)
                    self.tree.copy_global_to(guild=guild)
                    await self.tree.sync(guild=guild)
            else:
                await self.tree.sync()
            await self._clear_old_scope(previous, scope, application_id)
        except CONNECTION_ERRORS as exc:
            if _retryable(exc):
                log.warning("Discord: command sync could not reach Discord (%s: %s); retrying",
                            type(exc).__name__, exc)
                return UNREACHABLE
            log.warning("Discord: command sync failed (%s); will retry at the next start",
                        exc)
            return "sync failed"
        except app_commands.AppCommandError as exc:
            log.warning("Discord: command sync failed (%s); will retry at the next start",
                        exc)
            return "sync failed"
        await self._store.set_meta(SYNC_META_KEY, wanted)
        where = f"{len(self._guild_ids)} servers" if self._guild_ids else "all servers"
        log.info("Discord: synced %d slash commands to %s", len(self.tree.get_commands()), where)
        return "synced"

    async def _clear_old_scope(self, previous: str | None, scope: str,
                               application_id: int) -> None:
        """Remove commands left in a scope this configuration no longer uses."""
        if not previous or "|" not in previous:
            return
        old = previous.split("|", 1)[0]
        if old == scope:
            return
        http = self.client.http
        if old == "global":
            await http.bulk_upsert_global_commands(application_id, payload=[])
            return
        keep = set(scope.split(","))
        for guild_id in old.split(","):
            if guild_id.isdigit() and guild_id not in keep:
                with suppress(discord.HTTPException):  # the bot may have left that guild
                    await http.bulk_upsert_guild_commands(application_id, int(guild_id),
                                                          payload=[])

    async def close(self) -> None:
        """Close the gateway and the REST session (idempotent)."""
        if not self._stopped:
            self._stopped = True
            await self.client.close()


async def check_discord(store: Destinations, token: str | None, guild_ids: Sequence[int]) -> str:
    """`alertbot check`: log in (when a token is set) and count what is subscribed."""
    discord_dests = [i.destination for i in await store.destinations(platform="discord")]
    webhooks = sum(1 for d in discord_dests if is_webhook_destination(d))
    channels = len(discord_dests) - webhooks
    counts = f"{channels} channels, {webhooks} webhooks subscribed"
    if token is None:
        return f"webhook mode (no DISCORD_BOT_TOKEN, slash commands off); {counts}"
    client = discord.Client(intents=_intents())
    try:
        await asyncio.wait_for(client.login(token), CHECK_TIMEOUT)
        user = client.user
        application_id = client.application_id
    except discord.LoginFailure:
        raise RuntimeError("Discord rejected DISCORD_BOT_TOKEN (401)") from None
    except CONNECTION_ERRORS as exc:
        raise RuntimeError(f"cannot reach the Discord API ({type(exc).__name__})") from None
    finally:
        await client.close()
    if application_id is None:
        raise RuntimeError("Discord did not return the application id")
    sync = (f"commands sync instantly to {len(guild_ids)} servers" if guild_ids
            else "commands sync globally")
    name = user.name if user else "?"
    return (f"logged in as {name}, application {application_id}; {sync}; {counts}; "
            f"invite: {invite_url(application_id)}")
