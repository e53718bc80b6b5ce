"""Buttons on alerts (Chart, Why, Mute TOKEN 24h): which an alert gets, and what a press does.

Platform bindings stay thin: the notifiers ask `keyboard` for an alert's buttons at send time
(from the outbox row's change and key), and the bots hand each press to `press` with a
`Caller` and render the `ButtonAnswer`. A press is checked before anything happens: its payload
must be signed for the chat it was pressed in (domain/buttons.py), and its alert must still be
known there; anything else is refused with a notice only the presser sees, and changes nothing.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from alertbot.domain import buttons
from alertbot.domain.buttons import Action, Button, InvalidPayload
from alertbot.domain.commands import Reply, ok
from alertbot.domain.models import Change, Destination, Message
from alertbot.domain.render import headline
from alertbot.domain.why import explain
from alertbot.ports.clock import Clock
from alertbot.ports.lifecycle import reraise_if_cancelling
from alertbot.ports.store import ButtonStore
from alertbot.services.commands import Caller, CommandCore, moderator_rule

log = logging.getLogger(__name__)

SECRET_META_KEY = "buttons.secret"  # noqa: S105 - the meta key, not the secret
"""Store meta: the installation's button signing secret (hex), made on first use."""
WHY_SCAN = 50
"""Recent decisions of the chat searched for the pressed alert's."""
NOTICE_MAX = 200
"""Telegram's answerCallbackQuery text limit; Discord shows it ephemeral."""
FORGED = "This button is not valid here. Nothing was changed."
STALE = ("This alert is no longer known here, so its buttons no longer work. "
         "Use /why or /mute instead. Nothing was changed.")
SORRY = "Sorry, something went wrong on our side; please try again in a minute."

ChartAnswer = Callable[[Caller, str], Awaitable[Reply]]
"""Answers "chart of SYMBOL" (a symbol or token id) for the Chart button."""


@dataclass(frozen=True, slots=True)
class ButtonAnswer:
    """What a press leads to, for the binding to render."""

    notice: str = ""
    """A short text only the presser sees (Telegram callback answer, Discord ephemeral)."""
    reply: Reply | None = None
    """A fuller answer (Why, Chart): posted in the chat on Telegram, ephemeral on Discord."""
    buttons: tuple[Button, ...] | None = None
    """New buttons for the pressed message (None: leave them)."""
    refused: bool = False
    """Nothing was done; `notice` says why."""


def _refused(text: str) -> ButtonAnswer:
    return ButtonAnswer(notice=text[:NOTICE_MAX], refused=True)


class ButtonCore:
    """Builds the buttons of alerts and handles their presses, for every platform."""

    def __init__(self, store: ButtonStore, commands: CommandCore, clock: Clock, *,
                 chart: ChartAnswer) -> None:
        self._store = store
        self._commands = commands
        self._clock = clock
        self._chart = chart
        self._secret: bytes | None = None

    def __repr__(self) -> str:
        return "ButtonCore()"  # never the secret

    async def secret(self) -> bytes:
        """The installation's signing secret, made and stored on first use."""
        if self._secret is None:
            # One atomic read-change-write: two processes starting together agree on one.
            value = await self._store.update_meta(
                SECRET_META_KEY, lambda current: current or secrets.token_hex(
                    buttons.SECRET_BYTES))
            assert value is not None, "update_meta returns the stored value"
            self._secret = bytes.fromhex(value)
        return self._secret

    async def keyboard(self, destination: Destination, message: Message,
                       key: str) -> tuple[Button, ...]:
        """The buttons of one alert message sent under `key` (none for digests and tests)."""
        if not buttons.has_buttons(message, key):
            return ()
        change = message.changes[0]
        return buttons.keyboard(await self.secret(), destination, key, change.token.symbol)

    async def press(self, caller: Caller, data: str) -> ButtonAnswer:
        """Check and carry out one press; never raises for a bad or stale payload."""
        try:
            return await self._press(caller, data)
        except Exception:
            reraise_if_cancelling()
            log.exception("button press in %s failed", caller.destination)
            return _refused(SORRY)

    async def _press(self, caller: Caller, data: str) -> ButtonAnswer:
        destination = caller.destination
        try:
            press = buttons.verify(await self.secret(), destination, data)
        except InvalidPayload as exc:
            log.info("refused a button press by %s in %s: %s", caller.actor, destination, exc)
            return _refused(FORGED)
        changes = await self._store.message_changes(destination, press.key)
        if len(changes) != 1:
            return _refused(STALE)
        change = changes[0]
        if press.action is Action.CHART:
            return ButtonAnswer(reply=await self._chart(caller, str(change.token.token_id)))
        if press.action is Action.WHY:
            return ButtonAnswer(reply=await self.why(caller, change))
        if not await caller.moderator():
            verb = "mute" if press.action is Action.MUTE else "unmute"
            return _refused(f"Sorry, only {moderator_rule(caller.platform)} can {verb} "
                            f"alerts here. Nothing was changed.")
        if press.action is Action.MUTE:
            return await self._mute(caller, press.key, change)
        return await self._undo(caller, press.key, change)

    async def _mute(self, caller: Caller, key: str, change: Change) -> ButtonAnswer:
        now = self._clock.now()
        token = change.token
        result = await self._store.mute_token(caller.destination, token.token_id,
                                              now + buttons.MUTE_DURATION, now,
                                              actor=caller.actor)
        until = result.mute.until
        symbol = buttons.short_symbol(token.symbol)
        when = f"{until:%m-%d %H:%M} UTC"
        notice = (f"Muted {symbol} here until {when}; other tokens still arrive."
                  if result.created else f"{symbol} was already muted here until {when}.")
        keys = buttons.keyboard(await self.secret(), caller.destination, key, token.symbol,
                                muted_until=until)
        return ButtonAnswer(notice=notice, buttons=keys)

    async def _undo(self, caller: Caller, key: str, change: Change) -> ButtonAnswer:
        token = change.token
        ended = await self._store.unmute_token(caller.destination, token.token_id,
                                               self._clock.now(), actor=caller.actor)
        symbol = buttons.short_symbol(token.symbol)
        notice = (f"Unmuted {symbol}: its alerts are posted here again." if ended
                  else f"{symbol} was not muted here.")
        keys = buttons.keyboard(await self.secret(), caller.destination, key, token.symbol)
        return ButtonAnswer(notice=notice, buttons=keys)

    async def why(self, caller: Caller, change: Change) -> Reply:
        """What /why says about one alert: its decisions here, and mutes of its token."""
        destination = caller.destination
        records = await self._store.recent_decisions(destination, WHY_SCAN)
        lines = [explain(r.at, r.change, r.reason, r.detail) for r in records
                 if r.change is not None and r.change.change_id == change.change_id]
        if not lines:
            lines.append(f"{headline(change)}: no decision about it is stored any more.")
        lines.extend(await self._commands.mute_lines(destination, change.token.token_id))
        info = await self._store.destination(destination)
        now = self._clock.now()
        if info is not None and info.policy.mute_until and info.policy.mute_until > now:
            lines.append(f"All alerts here are muted until "
                         f"{info.policy.mute_until:%m-%d %H:%M} UTC (/unmute ends it).")
        if info is not None and info.paused_reason:
            lines.append(f"Alerts here are paused: {info.paused_reason}.")
        return ok(*lines, title=f"Why: {buttons.short_symbol(change.token.symbol)}")
