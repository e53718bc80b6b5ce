"""Discord rendering of the buttons on alerts: message components and their interactions.

Bot messages only: an incoming webhook cannot receive interactions, so alerts sent through a
webhook carry no buttons. Presses arrive as component interactions (type 3) on the gateway and
are handled by a raw listener, not by registered views, so buttons on messages sent before a
restart keep working. Discord invalidates an interaction not answered within 3 s: a press that
has not been decided quickly is deferred first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

import discord

from alertbot.domain.buttons import PREFIX, Action, Button, InvalidPayload, parse
from alertbot.platforms.discord.commands import DEFER_AFTER, caller_of
from alertbot.platforms.discord.embeds import alert_embed, reply_content
from alertbot.ports.lifecycle import reraise_if_cancelling
from alertbot.services.buttons import FORGED, ButtonAnswer, ButtonCore

log = logging.getLogger(__name__)

def button_view(buttons: Sequence[Button]) -> discord.ui.View | None:
    """The buttons as one action row (discord.py view with fixed custom ids)."""
    if not buttons:
        return None
    view = discord.ui.View(timeout=None)
    for button in buttons:
        style = discord.ButtonStyle.secondary
        with suppress(InvalidPayload):
            if parse(button.data).action is Action.MUTE:
                style = discord.ButtonStyle.danger
        view.add_item(discord.ui.Button(label=button.label, custom_id=button.data,
                                        style=style))
    return view


def release(view: discord.ui.View | None) -> None:
    """Forget a sent view: presses go to the raw listener, so discord.py need not keep it."""
    if view is not None:
        view.stop()


class DiscordButtons:
    """Answers presses of alert buttons through the button core."""

    def __init__(self, core: ButtonCore, *, defer_after: float = DEFER_AFTER) -> None:
        self._core = core
        self._defer_after = defer_after

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        """Gateway listener: handle component presses of alert buttons, ignore the rest."""
        if interaction.type is not discord.InteractionType.component:
            return
        data: dict[str, Any] = dict(interaction.data or {})
        custom_id = str(data.get("custom_id", ""))
        if not custom_id.startswith(f"{PREFIX}:"):
            await self._refuse(interaction, FORGED)
            return
        try:
            await self._handle(interaction, custom_id)
        except discord.HTTPException as exc:
            log.warning("could not answer a button press: HTTP %s (code %s)", exc.status,
                        exc.code)

    async def _handle(self, interaction: discord.Interaction[Any], custom_id: str) -> None:
        task = asyncio.ensure_future(self._core.press(caller_of(interaction), custom_id))
        try:
            done, _ = await asyncio.wait({task}, timeout=self._defer_after)
            deferred = not done
            if deferred:
                await interaction.response.defer(ephemeral=True, thinking=True)
            answer = await task
        finally:
            if not task.done():
                task.cancel()
        if deferred:
            await self._follow_up(interaction, answer)
        else:
            await self._respond(interaction, answer)

    async def _respond(self, interaction: discord.Interaction[Any],
                       answer: ButtonAnswer) -> None:
        none = discord.AllowedMentions.none()
        if answer.buttons is not None:
            view = button_view(answer.buttons)
            try:
                await interaction.response.edit_message(view=view)
            finally:
                release(view)
            if answer.notice:
                await interaction.followup.send(answer.notice, ephemeral=True,
                                                allowed_mentions=none)
            return
        content, embed = _render(answer)
        if embed is not None:
            await interaction.response.send_message(content, embed=embed, ephemeral=True,
                                                    allowed_mentions=none)
        else:
            await interaction.response.send_message(content or "…", ephemeral=True,
                                                    allowed_mentions=none)

    async def _follow_up(self, interaction: discord.Interaction[Any],
                         answer: ButtonAnswer) -> None:
        none = discord.AllowedMentions.none()
        if answer.buttons is not None and interaction.message is not None:
            view = button_view(answer.buttons)
            try:
                await interaction.message.edit(view=view)
            except discord.HTTPException as exc:
                log.warning("could not update the buttons: HTTP %s", exc.status)
            finally:
                release(view)
        content, embed = _render(answer)
        if embed is not None:
            await interaction.followup.send(content or "", embed=embed, ephemeral=True,
                                            allowed_mentions=none)
        else:
            await interaction.followup.send(content or "…", ephemeral=True,
                                            allowed_mentions=none)

    async def _refuse(self, interaction: discord.Interaction[Any], text: str) -> None:
        try:
            await interaction.response.send_message(text, ephemeral=True,
                                                    allowed_mentions=discord.AllowedMentions
                                                    .none())
        except discord.HTTPException as exc:
            log.warning("could not answer a button press: HTTP %s", exc.status)
        except Exception:
            reraise_if_cancelling()
            log.exception("answering a button press failed")


def _render(answer: ButtonAnswer) -> tuple[str, discord.Embed | None]:
    if answer.reply is None:
        return answer.notice, None
    content = reply_content(answer.reply)
    embed = alert_embed(answer.reply.message) if answer.reply.message is not None else None
    if answer.notice:
        content = f"{answer.notice}\n{content}".strip()
    return content, embed
