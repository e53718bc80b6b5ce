"""Discord slash commands: thin bindings over the chat command core.

Each command turns its options into a core call with a `Caller` for the channel (or thread) it
was typed in, and renders the `Reply`: lookups as an embed, everything else as text, errors
and refusals ephemeral. Discord invalidates an interaction that is not answered within 3 s,
so lookups defer at once and every other command defers if the core has not answered quickly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import discord
from discord import app_commands

from alertbot.domain.commands import COMMANDS, CommandSpec, Reply, ReplyKind
from alertbot.domain.flood import FloodGuard, Verdict, slow_down_text
from alertbot.domain.models import Destination
from alertbot.platforms.discord.embeds import (
    alert_embed,
    chart_embed,
    chart_file,
    clip,
    no_pings,
    reply_content,
)
from alertbot.platforms.discord.permissions import (
    MODERATOR_PERMISSIONS,
    is_moderator,
    missing_permissions,
)
from alertbot.ports.clock import Clock
from alertbot.ports.lifecycle import reraise_if_cancelling
from alertbot.ports.store import Destinations
from alertbot.services.commands import Caller, CommandCore

log = logging.getLogger(__name__)

PLATFORM = "discord"
DEFER_AFTER = 1.0
"""Seconds a command may take before it is deferred; Discord's deadline is 3 s."""
AUTOCOMPLETE_MAX = 25
"""Choices per autocomplete answer (receiving-and-responding.mdx)."""
CHOICE_TEXT_MAX = 100
"""Length of a choice's name and value."""
GUILD_LABEL_PREFIX = "guild:"
"""Destination label recording the guild of a channel subscribed by slash command."""
APOLOGY = "Sorry, something went wrong on my side. Please try again in a minute."

_KINDS_HELP = "comma list of signal, hourly, tm_grade, fundamental (default: all)"

Handler = Callable[[Caller], Awaitable[Reply]]


def guild_label(guild_id: int) -> str:
    """The destination label that remembers which guild a channel belongs to."""
    return f"{GUILD_LABEL_PREFIX}{guild_id}"


def destination_of(interaction: discord.Interaction[Any]) -> Destination:
    """The channel, or parent channel and thread, an interaction came from."""
    channel = interaction.channel
    if isinstance(channel, discord.Thread) and channel.parent_id:
        return Destination(PLATFORM, str(channel.parent_id), str(channel.id))
    return Destination(PLATFORM, str(interaction.channel_id or 0))


def caller_of(interaction: discord.Interaction[Any]) -> Caller:
    """Who typed a command and where; moderator status from the interaction's permissions."""
    return Caller(
        destination=destination_of(interaction),
        user_id=str(interaction.user.id),
        user_name=interaction.user.name,
        is_private=interaction.guild_id is None,
        is_moderator=is_moderator(interaction.permissions),
    )


def _missing_bot_permissions(interaction: discord.Interaction[Any]) -> list[str]:
    if interaction.guild_id is None:
        return []
    return missing_permissions(interaction.app_permissions,
                               thread=isinstance(interaction.channel, discord.Thread))


class DiscordCommands:
    """Slash command bindings; `install` adds them to a command tree."""

    def __init__(self, core: CommandCore, store: Destinations, clock: Clock, *,
                 defer_after: float = DEFER_AFTER, flood: FloodGuard | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._core = core
        self._flood = flood or FloodGuard()
        self._monotonic = monotonic
        self._store = store
        self._clock = clock
        self._defer_after = defer_after

    # ---------------------------------------------------------------- answering

    async def answer(self, interaction: discord.Interaction[Any],
                     work: Coroutine[Any, Any, Reply], *, defer_now: bool = False) -> None:
        """Run `work` and answer with its reply, deferring first if it may be slow.

        A user over the flood budget gets one private "slow down", then no answer at all
        until the window has room (`work` is not run).
        """
        key = f"{PLATFORM}:{interaction.user.id}"
        verdict = self._flood.check(key, self._monotonic())
        if verdict is not Verdict.ALLOW:
            work.close()
            if verdict is Verdict.WARN:
                log.info("%s is over the command budget; ignoring its commands for a while",
                         key)
                text = slow_down_text(self._flood.retry_in(key, self._monotonic()))
                with contextlib.suppress(discord.HTTPException):
                    await interaction.response.send_message(
                        text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none())
            return
        task = asyncio.ensure_future(work)
        deferred = False
        try:
            if defer_now:
                await interaction.response.defer(thinking=True)
                deferred = True
            else:
                done, _ = await asyncio.wait({task}, timeout=self._defer_after)
                if not done:
                    await interaction.response.defer(thinking=True)
                    deferred = True
            try:
                reply = await task
            except Exception:
                reraise_if_cancelling()
                log.exception("/%s failed", _command_name(interaction))
                reply = Reply((APOLOGY,), kind=ReplyKind.INTERNAL)
            await self._send(interaction, reply, deferred)
        except discord.HTTPException as exc:
            # The interaction expired or was answered elsewhere; nothing more can be shown.
            log.warning("could not answer /%s: HTTP %s (code %s)", _command_name(interaction),
                        exc.status, exc.code)
        finally:
            if not task.done():
                task.cancel()

    async def _send(self, interaction: discord.Interaction[Any], reply: Reply,
                    deferred: bool) -> None:
        content = reply_content(reply) or None
        embed = alert_embed(reply.message) if reply.message is not None else None
        none = discord.AllowedMentions.none()
        if reply.image is not None:
            # The caption is the embed's description; the image is attached to the message.
            embed, file = chart_embed(reply.image), chart_file(reply.image)
            if deferred:
                await interaction.followup.send(embed=embed, file=file, allowed_mentions=none)
            else:
                await interaction.response.send_message(embed=embed, file=file,
                                                        allowed_mentions=none)
            return
        if not deferred:
            if embed is not None:
                await interaction.response.send_message(content, embed=embed,
                                                        ephemeral=reply.ephemeral,
                                                        allowed_mentions=none)
            else:
                await interaction.response.send_message(content, ephemeral=reply.ephemeral,
                                                        allowed_mentions=none)
            return
        if reply.ephemeral:
            # A deferred answer is public; an error replaces it with a private one.
            await interaction.delete_original_response()
            await interaction.followup.send(content or "…", ephemeral=True, allowed_mentions=none)
            return
        if embed is not None:
            await interaction.followup.send(content or "", embed=embed, allowed_mentions=none)
        else:
            await interaction.followup.send(content or "…", allowed_mentions=none)

    # ---------------------------------------------------------------- commands

    async def _subscribe(self, interaction: discord.Interaction[Any], symbol: str,
                         kinds: str | None) -> Reply:
        caller = caller_of(interaction)
        if await caller.moderator():
            missing = _missing_bot_permissions(interaction)
            if missing:
                return Reply((f"I cannot post alerts here: I am missing {', '.join(missing)}. "
                              f"Grant it to me, then run /subscribe again.",),
                             kind=ReplyKind.REFUSED)
        reply = await self._core.subscribe(caller, symbol, kinds or "")
        if not reply.error and interaction.guild_id is not None:
            # Remember the guild so leaving it can pause this channel's alerts.
            await self._store.ensure_destination(caller.destination, self._clock.now(),
                                                 label=guild_label(interaction.guild_id))
        return reply

    async def complete_symbol(self, current: str, *,
                              with_all: bool = False) -> list[app_commands.Choice[str]]:
        """Up to 25 catalog tokens matching what the user has typed so far."""
        choices: list[app_commands.Choice[str]] = []
        if with_all and "all".startswith(current.strip().lower()):
            choices.append(app_commands.Choice(name="all tokens", value="all"))
        try:
            tokens = await self._core.complete_symbol(current, AUTOCOMPLETE_MAX)
        except Exception:
            reraise_if_cancelling()
            log.warning("symbol autocomplete failed", exc_info=True)
            tokens = []
        symbols = [t.symbol.upper() for t in tokens]
        for token in tokens:
            if len(choices) >= AUTOCOMPLETE_MAX:
                break
            # A symbol several tokens share would be ambiguous: use the id instead.
            value = token.symbol if symbols.count(token.symbol.upper()) == 1 \
                else str(token.token_id)
            name = no_pings(f"{token.symbol} · {token.name}")
            choices.append(app_commands.Choice(name=clip(name, CHOICE_TEXT_MAX),
                                               value=value[:CHOICE_TEXT_MAX]))
        return choices

    def commands(self) -> list[app_commands.Command[Any, ..., None]]:
        """Every slash command, bound to this instance."""
        specs = {spec.name: spec for spec in COMMANDS}
        core = self._core
        answer = self.answer

        async def symbols(interaction: discord.Interaction[Any],
                          current: str) -> list[app_commands.Choice[str]]:
            return await self.complete_symbol(current)

        async def targets(interaction: discord.Interaction[Any],
                          current: str) -> list[app_commands.Choice[str]]:
            return await self.complete_symbol(current, with_all=True)

        @app_commands.describe(symbol="token symbol, e.g. BTC")
        @app_commands.autocomplete(symbol=symbols)
        async def signal(interaction: discord.Interaction[Any], symbol: str) -> None:
            await answer(interaction, core.signal(caller_of(interaction), symbol),
                         defer_now=True)

        @app_commands.describe(symbol="token symbol, e.g. BTC")
        @app_commands.autocomplete(symbol=symbols)
        async def grade(interaction: discord.Interaction[Any], symbol: str) -> None:
            await answer(interaction, core.grade(caller_of(interaction), symbol),
                         defer_now=True)

        @app_commands.describe(symbol="token symbol, e.g. BTC",
                               range="30d, 90d (default), 1y, or drivers")
        @app_commands.autocomplete(symbol=symbols)
        @app_commands.choices(range=[app_commands.Choice(name=n, value=n)
                                     for n in ("30d", "90d", "1y", "drivers")])
        async def chart(interaction: discord.Interaction[Any], symbol: str,
                        range: str | None = None) -> None:
            # Deferred at once: a cold cache reads the history and draws, which may pass 3 s.
            await answer(interaction, core.chart(caller_of(interaction), symbol, range or ""),
                         defer_now=True)

        @app_commands.describe(symbol="token symbol, or all", kinds=_KINDS_HELP)
        @app_commands.autocomplete(symbol=targets)
        async def subscribe(interaction: discord.Interaction[Any], symbol: str,
                            kinds: str | None = None) -> None:
            await answer(interaction, self._subscribe(interaction, symbol, kinds))

        @app_commands.describe(symbol="token symbol, or all", kinds=_KINDS_HELP)
        @app_commands.autocomplete(symbol=targets)
        async def unsubscribe(interaction: discord.Interaction[Any], symbol: str,
                              kinds: str | None = None) -> None:
            await answer(interaction, core.unsubscribe(caller_of(interaction), symbol,
                                                       kinds or ""))

        async def subscriptions(interaction: discord.Interaction[Any]) -> None:
            await answer(interaction, core.subscriptions(caller_of(interaction)))

        @app_commands.describe(max_alerts="alerts per window (moderators)",
                               window="window length, e.g. 1h (moderators)")
        async def throttle(interaction: discord.Interaction[Any],
                           max_alerts: app_commands.Range[int, 1, 1000] | None = None,
                           window: str | None = None) -> None:
            budget = "" if max_alerts is None else str(max_alerts)
            await answer(interaction, core.throttle(caller_of(interaction), budget,
                                                    window or ""))

        @app_commands.describe(hours="HH:MM-HH:MM [time zone], e.g. 22:00-07:00 Europe/Berlin, "
                                     "or off")
        async def quiet(interaction: discord.Interaction[Any], hours: str | None = None) -> None:
            await answer(interaction, core.quiet(caller_of(interaction), hours or ""))

        @app_commands.describe(duration="how long, e.g. 2h or 1d")
        async def mute(interaction: discord.Interaction[Any], duration: str) -> None:
            await answer(interaction, core.mute(caller_of(interaction), duration))

        @app_commands.describe(schedule="daily HH:MM [TZ] | weekly DAY HH:MM [TZ] | off, then "
                                        "optionally only and always")
        async def digest(interaction: discord.Interaction[Any],
                         schedule: str | None = None) -> None:
            await answer(interaction, core.digest(caller_of(interaction), schedule or ""))

        @app_commands.describe(symbol="end only this token's mute (set with the Mute button)")
        @app_commands.autocomplete(symbol=symbols)
        async def unmute(interaction: discord.Interaction[Any], symbol: str | None = None) -> None:
            await answer(interaction, core.unmute(caller_of(interaction), symbol or ""))

        async def why(interaction: discord.Interaction[Any]) -> None:
            await answer(interaction, core.why(caller_of(interaction)))

        @app_commands.describe(setting="on: attach a 30-day chart to grade alerts here; off")
        @app_commands.choices(setting=[app_commands.Choice(name=n, value=n)
                                       for n in ("on", "off")])
        async def charts(interaction: discord.Interaction[Any], setting: str) -> None:
            await answer(interaction, core.charts(caller_of(interaction), setting))

        async def test(interaction: discord.Interaction[Any]) -> None:
            await answer(interaction, core.test(caller_of(interaction)))

        async def id_(interaction: discord.Interaction[Any]) -> None:
            await answer(interaction, core.id(caller_of(interaction)))

        async def help_(interaction: discord.Interaction[Any]) -> None:
            await answer(interaction, core.help(caller_of(interaction)))

        callbacks: dict[str, Callable[..., Coroutine[Any, Any, None]]] = {
            "signal": signal, "grade": grade, "chart": chart, "subscribe": subscribe,
            "unsubscribe": unsubscribe, "subscriptions": subscriptions, "throttle": throttle,
            "quiet": quiet, "mute": mute, "unmute": unmute, "digest": digest, "why": why,
            "charts": charts, "test": test, "id": id_, "help": help_,
        }
        return [_command(specs[name], callback) for name, callback in callbacks.items()]

    def install(self, tree: app_commands.CommandTree[Any]) -> None:
        """Add every command to a tree (global; command sync decides where they go)."""
        for command in self.commands():
            tree.add_command(command)


def _command(spec: CommandSpec,
             callback: Callable[..., Coroutine[Any, Any, None]]) -> app_commands.Command[
                 Any, ..., None]:
    command: app_commands.Command[Any, ..., None] = app_commands.Command(
        name=spec.name, description=spec.description[:100], callback=callback)
    if spec.moderator:
        command.default_permissions = MODERATOR_PERMISSIONS
    return command


def _command_name(interaction: discord.Interaction[Any]) -> str:
    command = interaction.command
    return command.name if command is not None else "command"
