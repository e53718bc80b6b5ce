"""Platform-neutral chat commands (DESIGN §4): parse, check permission, apply, reply.

Platform bindings (Telegram, Discord) stay thin: they describe who typed a command and where
as a `Caller`, call one `CommandCore` handler, and render the returned `Reply`. Handlers never
raise for user mistakes (bad input, refusals, unknown symbols): those come back as a Reply
with `error` set, and they change nothing. Only infrastructure failures (the store is gone)
propagate, and the binding answers those with a generic apology.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from alertbot.domain.charts import DEFAULT_DAYS, ChartInputError, parse_range
from alertbot.domain.commands import (
    COMMANDS,
    Reply,
    ReplyKind,
    fail,
    ok,
    split_args,
    test_alert_message,
)
from alertbot.domain.models import (
    ALL_TOKENS,
    Change,
    Destination,
    Kind,
    Policy,
    Token,
)
from alertbot.domain.parsing import (
    format_duration,
    parse_kinds,
)
from alertbot.domain.policy import (
    MAX_ECHO,
    describe_policy,
    echo,
    parse_on_off,
    update_policy,
)
from alertbot.domain.render import render_grade_lookup, render_signal_lookup
from alertbot.domain.scheduled_digest import describe_schedule, period_containing
from alertbot.domain.why import explain, token_mute_line
from alertbot.ports.clock import Clock
from alertbot.ports.lifecycle import reraise_if_cancelling
from alertbot.ports.notifier import DeliveryError, Notifier, Target
from alertbot.ports.store import CommandStore, Destinations, PolicyChange
from alertbot.services.charts import ChartService, ChartUnavailable
from alertbot.services.lookup import InvalidSymbol, Lookup, LookupFailed
from alertbot.services.pacing import Pacer

log = logging.getLogger(__name__)

MAX_SUBSCRIPTIONS = 100
"""Per destination: enough for any real channel, small enough to keep /subscriptions short."""
WHY_LIMIT = 5
INTERNAL_FAILURE = "Sorry, something went wrong on our side; please try again in a minute."

ModeratorCheck = Callable[[], Awaitable[bool]]

_MODERATOR_RULE = {
    "telegram": "chat admins (anyone in a private chat)",
    "discord": "members with Manage Server or Manage Channels",
}


def moderator_rule(platform: str) -> str:
    """Who counts as a moderator on a platform, in words."""
    return _MODERATOR_RULE.get(platform, "moderators")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who typed a command, and where: built by the platform binding for each command."""

    destination: Destination
    """The chat, channel or forum topic the command was typed in (alerts go there)."""
    user_id: str
    user_name: str = ""
    is_private: bool = False
    """A one-to-one chat with the bot: the user owns it and may change everything."""
    is_moderator: bool | ModeratorCheck = False
    """Precomputed, or an async check that is only awaited when a command needs it."""

    @property
    def platform(self) -> str:
        """Platform name, e.g. "telegram"."""
        return self.destination.platform

    @property
    def actor(self) -> str:
        """Who did it, for the audit log."""
        name = f" {echo(self.user_name)}" if self.user_name else ""
        return f"{self.platform}:{self.user_id}{name}"

    async def moderator(self) -> bool:
        """Whether the caller may change this destination's settings."""
        if self.is_private:
            return True
        if isinstance(self.is_moderator, bool):
            return self.is_moderator
        try:
            return await self.is_moderator()
        except Exception:
            reraise_if_cancelling()
            # A failed permission lookup must refuse, never crash the command.
            log.warning("moderator check for %s in %s failed", self.user_id, self.destination,
                        exc_info=True)
            return False


# ---------------------------------------------------------------- test alerts


class AlertTestOutcome(enum.StrEnum):
    """How a test alert ended."""

    SENT = "sent"
    FAILED = "failed"
    """The platform refused or could not be reached: the lines say what to fix."""
    NOT_CONFIGURED = "not_configured"
    """This configuration cannot deliver to the platform at all (no token, no address)."""


@dataclass(frozen=True, slots=True)
class AlertTestResult:
    """The outcome of one test alert, in words that say what to fix."""

    outcome: AlertTestOutcome
    lines: tuple[str, ...]

    @property
    def sent(self) -> bool:
        """The platform accepted the test alert."""
        return self.outcome is AlertTestOutcome.SENT


AlertTestSender = Callable[[Destination], Awaitable[AlertTestResult]]
"""Sends one test alert to a destination (built by the composition root)."""

TOKEN_VARIABLES = {"telegram": "TELEGRAM_BOT_TOKEN", "discord": "DISCORD_BOT_TOKEN"}
TEST_SEND_TIMEOUT = 30.0
TEST_RATE_LIMIT_WAIT = 10.0
"""Longest wait a test alert takes once when the platform asks to slow down."""


async def send_test_alert(destination: Destination, *, notifiers: Mapping[str, Notifier],
                          pacer: Pacer, store: Destinations, clock: Clock,
                          send_timeout: float = TEST_SEND_TIMEOUT) -> AlertTestResult:
    """Send one marked test alert through the destination's notifier, paced like alerts.

    It bypasses the outbox (never retried or throttled later) and changes nothing: a refusal
    is explained, not recorded, and no subscription is paused.
    """
    platform = destination.platform
    notifier = notifiers.get(platform)
    if notifier is None:
        variable = TOKEN_VARIABLES.get(platform)
        fix = (f"set {variable} in the environment or .env (and restart a running alertbot)"
               if variable else "this platform is not available")
        return AlertTestResult(AlertTestOutcome.NOT_CONFIGURED,
                          (f"Test alert not sent: {platform} is not configured; {fix}.",))
    info = await store.destination(destination)
    address = info.address if info is not None else None
    if platform == "webhook" and not address:
        return AlertTestResult(AlertTestOutcome.NOT_CONFIGURED, (
            f"Test alert not sent: {destination} has no URL; subscribe it first with "
            f"alertbot subscribe --platform webhook --chat {destination.chat_id} --url URL.",))
    await notifier.start()
    limits = notifier.limits(destination)
    # A fresh key: a Discord nonce must never match an alert's, nor an earlier test.
    key = f"test-{uuid.uuid4().hex[:19]}"
    for attempt in range(2):
        slot = await pacer.acquire(limits, scopes=(platform, str(destination)))
        try:
            async with asyncio.timeout(send_timeout):
                await notifier.send(Target(destination, address),
                                    test_alert_message(clock.now()), key=key, silent=False)
        except DeliveryError as error:
            if not error.rate_limited:
                return AlertTestResult(AlertTestOutcome.FAILED,
                                       explain_test_failure(destination, error))
            pacer.release(limits, slot)
            wait = error.retry_after or 1.0
            if attempt or wait > TEST_RATE_LIMIT_WAIT:
                return AlertTestResult(AlertTestOutcome.FAILED,
                                       explain_test_failure(destination, error))
            # Another sender (a CLI test, another bot on the token) used the chat's budget
            # a moment ago: wait as asked and try once more, as an alert would be.
            pacer.pause(str(destination), wait)
            continue
        except TimeoutError:
            return AlertTestResult(AlertTestOutcome.FAILED, (
                f"Test alert to {destination} failed: {platform} did not answer within "
                f"{send_timeout:.0f}s. Check the network and try again.",))
        break
    return AlertTestResult(AlertTestOutcome.SENT, (
        f"Test alert sent to {destination}. If it did not show up there, check that you are "
        f"looking at the right chat{' and topic' if destination.thread_id else ''}.",))


def explain_test_failure(destination: Destination, error: DeliveryError) -> tuple[str, ...]:
    """What went wrong with a test alert, and the one thing to do about it."""
    platform = destination.platform
    reason = error.reason
    lowered = reason.lower()
    lines = [f"Test alert to {destination} failed: {reason}."]
    thread = destination.thread_id
    if error.credentials:
        variable = TOKEN_VARIABLES.get(platform, "the bot token")
        lines.append(f"Fix: put the bot's current token in {variable} (and restart a "
                     f"running alertbot).")
    elif error.rate_limited:
        wait = f" {error.retry_after:g}s" if error.retry_after else " a moment"
        lines.append(f"Fix: nothing is wrong; {platform} asked to slow down. Try again in"
                     f"{wait}.")
    elif error.rekey_to:
        lines.append(f"Fix: the group became a supergroup; use --chat {error.rekey_to} from "
                     f"now on.")
    elif platform == "telegram":
        lines.append(_telegram_fix(lowered, thread))
    elif platform == "discord":
        lines.append(_discord_fix(lowered, thread))
    elif error.retryable:
        lines.append("Fix: the destination could not be reached; check its address and "
                     "network, then try again.")
    else:
        lines.append("Fix: the destination refused the message; check its address.")
    return tuple(lines)


def _telegram_fix(reason: str, thread: str) -> str:
    if "thread not found" in reason or "topic" in reason:
        return (f"Fix: topic {thread or '(none)'} does not exist in this chat; send /id inside "
                f"the topic to get its id.")
    if "chat not found" in reason:
        return ("Fix: check the chat id (send /id in the chat) and that the bot was added to "
                "it; a private chat must have sent /start to the bot first.")
    if "blocked" in reason:
        return "Fix: the user blocked the bot; they must unblock it (and send /start)."
    if "kicked" in reason or "not a member" in reason:
        return ("Fix: add the bot to the chat (in a channel, as an administrator that can "
                "post messages), then try again.")
    if "rights" in reason or "write_forbidden" in reason:
        return "Fix: let the bot post in this chat (an admin must allow it to send messages)."
    if "unreachable" in reason or "in time" in reason:
        return "Fix: Telegram could not be reached; check TELEGRAM_API_URL and the network."
    return "Fix: see the reason above; nothing was changed."


def _discord_fix(reason: str, thread: str) -> str:
    if "50013" in reason:
        return ("Fix: in the channel's settings (Permissions), grant the bot's role the "
                "permissions named above.")
    if "50001" in reason:
        return ("Fix: invite the bot to the server and give it View Channel in this channel "
                "(alertbot prints the invite URL in its logs at start).")
    if "10003" in reason:
        if thread:
            return (f"Fix: thread {thread} does not exist (or was deleted); send /id inside "
                    f"the thread to get its id.")
        return ("Fix: no such channel; send /id in the channel (or use Copy Channel ID with "
                "Developer Mode on).")
    if "10004" in reason:
        return "Fix: invite the bot back to the server."
    if "webhook" in reason:
        return "Fix: create a new webhook and subscribe it again with --url."
    if "unreachable" in reason or "in time" in reason or "log in" in reason:
        return "Fix: Discord could not be reached; check DISCORD_API_URL and the network."
    return "Fix: see the reason above; nothing was changed."


# ---------------------------------------------------------------- the handlers


class CommandCore:
    """Handlers for every chat command; one instance serves every platform and chat."""

    def __init__(self, store: CommandStore, lookup: Lookup, clock: Clock, *,
                 band_label: Callable[[float], str],
                 on_policy_change: Callable[[], None] | None = None,
                 send_test: AlertTestSender | None = None,
                 charts: ChartService | None = None) -> None:
        self._store = store
        self._charts = charts
        self._send_test = send_test
        self._on_policy_change = on_policy_change
        self._lookup = lookup
        self._clock = clock
        self._band_label = band_label

    async def handle(self, caller: Caller, command: str, text: str = "") -> Reply:
        """Run a command by name (without the slash) with the text typed after it.

        A failure on our side (the store, a bug) is logged and answered as such, never as a
        mistake of the caller.
        """
        name = command.strip().lower().lstrip("/")
        try:
            return await self._handle(caller, name, text)
        except Exception:
            log.exception("/%s in %s failed", echo(name), caller.destination)
            return fail(ReplyKind.INTERNAL, INTERNAL_FAILURE)

    async def _handle(self, caller: Caller, name: str, text: str) -> Reply:
        args = split_args(text)
        if name in ("signal", "grade"):
            if len(args) != 1:
                return self._usage(name)
            return await (self.signal(caller, args[0]) if name == "signal"
                          else self.grade(caller, args[0]))
        if name == "chart":
            if not 1 <= len(args) <= 2:
                return self._usage(name)
            return await self.chart(caller, *args)
        if name in ("subscribe", "unsubscribe"):
            if not args:
                return self._usage(name)
            kinds = " ".join(args[1:])
            return await (self.subscribe(caller, args[0], kinds) if name == "subscribe"
                          else self.unsubscribe(caller, args[0], kinds))
        if name == "throttle":
            if len(args) > 2:
                return self._usage(name)
            return await self.throttle(caller, *args)
        if name == "quiet":
            return await self.quiet(caller, text)
        if name == "charts":
            if len(args) > 1:
                return self._usage(name)
            return await self.charts(caller, text)
        if name == "mute":
            return await self.mute(caller, text)
        if name == "digest":
            return await self.digest(caller, text)
        if name == "unmute":
            if len(args) > 1:
                return self._usage(name)
            return await self.unmute(caller, *args)
        if name in ("subscriptions", "why", "help", "start", "test", "id"):
            if args and name != "start":  # /start carries deep-link payloads
                return self._usage(name)
            handler = {"subscriptions": self.subscriptions,
                       "why": self.why, "help": self.help, "start": self.start,
                       "test": self.test, "id": self.id}[name]
            return await handler(caller)
        return fail(ReplyKind.USAGE, f"Unknown command /{echo(name)}. Send /help for the list.")

    # -- lookups (anyone)

    async def signal(self, caller: Caller, symbol: str) -> Reply:
        """Latest daily and hourly signal of a token, with when each fired."""
        token = await self._resolve(symbol, "signal")
        if isinstance(token, Reply):
            return token
        try:
            snapshot = await self._lookup.snapshot(token, (Kind.SIGNAL, Kind.HOURLY))
        except LookupFailed as exc:
            return fail(ReplyKind.NOT_FOUND, str(exc))
        return Reply(self._missing(snapshot.missing), message=render_signal_lookup(snapshot))

    async def grade(self, caller: Caller, symbol: str) -> Reply:
        """TM grade and fundamental grade of a token, with bands and the recent change."""
        token = await self._resolve(symbol, "grade")
        if isinstance(token, Reply):
            return token
        try:
            snapshot = await self._lookup.snapshot(token, (Kind.TM_GRADE, Kind.FUNDAMENTAL))
        except LookupFailed as exc:
            return fail(ReplyKind.NOT_FOUND, str(exc))
        drivers: tuple[str, ...] = ()
        if self._charts is not None:
            drivers = await self._driver_lines(token, snapshot.recent)
        return Reply(self._missing(snapshot.missing) + drivers,
                     message=render_grade_lookup(snapshot, self._band_label))

    async def _driver_lines(self, token: Token, recent: Sequence[Change]) -> tuple[str, ...]:
        """Key drivers of the fundamental grade, with the change since its last alert."""
        assert self._charts is not None
        since = max((c.detected_at for c in recent if c.kind is Kind.FUNDAMENTAL),
                    default=None)
        try:
            spec = await self._charts.drivers(token, since)
        except ChartUnavailable as exc:
            log.info("/grade %s without key drivers: %s", token.symbol, exc)
            return ()
        if not spec.bars:
            return ()
        return ("Key drivers (fundamental grade):", *(f"  {line}" for line in spec.lines))

    async def chart(self, caller: Caller, symbol: str, span: str = "") -> Reply:
        """A grade-history chart (or the key drivers) of a token, with its text alternative."""
        try:
            days = parse_range(span) if span else DEFAULT_DAYS
        except ChartInputError as exc:
            return self._usage("chart", str(exc))
        if self._charts is None:
            return fail(ReplyKind.NOT_FOUND, "Charts are not available with this source.")
        token = await self._resolve(symbol, "chart")
        if isinstance(token, Reply):
            return token
        try:
            if days is None:
                recent = await self._lookup.recent_changes(token, Kind.FUNDAMENTAL, 1)
                since = recent[0].detected_at if recent else None
                image = await self._charts.drivers_chart(token, since)
            else:
                image = await self._charts.chart(token, days)
        except ChartUnavailable as exc:
            return fail(ReplyKind.NOT_FOUND, str(exc))
        return Reply((image.caption,), image=image)

    async def complete_symbol(self, prefix: str, limit: int = 25) -> list[Token]:
        """Known tokens whose symbol or name starts with `prefix` (for autocomplete)."""
        if not prefix.strip():
            return []
        return await self._store.search_tokens(prefix.strip()[:MAX_ECHO], limit)

    # -- subscriptions

    async def _moderator_kinds(self, caller: Caller, command: str,
                               kinds: str) -> tuple[Kind, ...] | Reply:
        """The kinds a moderator's (un)subscribe names, or the refusal or usage reply."""
        refused = await self._refuse_unless_moderator(caller, f"{command} this chat")
        if refused:
            return refused
        try:
            return parse_kinds(kinds)
        except ValueError as exc:
            return self._usage(command, str(exc))

    async def subscribe(self, caller: Caller, target: str, kinds: str = "") -> Reply:
        """Subscribe the caller's destination to a token (or `all`) for some kinds."""
        wanted = await self._moderator_kinds(caller, "subscribe", kinds)
        if isinstance(wanted, Reply):
            return wanted
        resolved = await self._target(target, "subscribe")
        if isinstance(resolved, Reply):
            return resolved
        token_id, described = resolved
        destination = caller.destination
        current = await self._store.subscriptions(destination)
        if len(current) >= MAX_SUBSCRIPTIONS and all(s.token_id != token_id for s in current):
            return fail(ReplyKind.REFUSED,
                         f"This chat already has {MAX_SUBSCRIPTIONS} subscriptions; remove some "
                         f"first, or use /subscribe all.")
        info = await self._store.destination(destination)
        changed = await self._store.subscribe(destination, token_id, wanted, self._clock.now(),
                                              actor=caller.actor)
        names = _kind_list(wanted)
        if not changed:
            return ok(f"This chat already receives {described}: {names}.")
        lines = [f"Subscribed this chat to {described}: {names}.",
                 "Changes detected from now on will be posted here."]
        if info is not None and info.paused_reason:
            lines.append("Alerts here had been paused; they are on again.")
        return ok(*lines)

    async def unsubscribe(self, caller: Caller, target: str, kinds: str = "") -> Reply:
        """Remove kinds of a token from the caller's destination (`all`: every subscription)."""
        wanted = await self._moderator_kinds(caller, "unsubscribe", kinds)
        if isinstance(wanted, Reply):
            return wanted
        destination = caller.destination
        if target.strip().lower() == "all":
            token_id: int | None = None
            described = "every subscription"
        else:
            resolved = await self._target(target, "unsubscribe")
            if isinstance(resolved, Reply):
                return resolved
            token_id, described = resolved
        removed = await self._store.unsubscribe(destination, token_id, wanted,
                                                self._clock.now(), actor=caller.actor)
        if removed:
            return ok(f"Removed {_kind_list(wanted)} from {described}.")
        lines = [f"Nothing to remove: this chat has no subscription to {described} for "
                 f"{_kind_list(wanted)}."]
        if token_id is not None and any(s.token_id == ALL_TOKENS for s in
                                        await self._store.subscriptions(destination)):
            lines.append("It receives all tokens; /unsubscribe all stops that.")
        return fail(ReplyKind.NOT_FOUND, *lines)

    async def subscriptions(self, caller: Caller) -> Reply:
        """What the caller's destination receives, and its throttle settings."""
        destination = caller.destination
        subs = await self._store.subscriptions(destination)
        info = await self._store.destination(destination)
        lines: list[str] = []
        if not subs:
            lines.append("No subscriptions yet. Example: /subscribe BTC")
        for sub in subs:
            name = "all tokens" if sub.token_id == ALL_TOKENS else (sub.symbol or
                                                                     f"token {sub.token_id}")
            lines.append(f"• {name}: {_kind_list(sub.kinds)}")
        if info is not None and info.paused_reason:
            lines.append(f"PAUSED: {info.paused_reason}. Send /subscribe again to resume.")
        lines.extend(describe_policy(info.policy if info else Policy()))
        return ok(*lines, title="Subscriptions here")

    # -- noise controls

    async def throttle(self, caller: Caller, max_alerts: str = "", window: str = "") -> Reply:
        """Show the alert budget, or set it (`max_alerts` alone keeps the window)."""
        policy = await self._policy(caller.destination)
        if not max_alerts.strip() and not window.strip():
            return ok(*describe_policy(policy),
                       "Moderators can change it, e.g. /throttle 5 1h", title="Throttle")
        refused = await self._refuse_unless_moderator(caller, "change the throttle")
        if refused:
            return refused
        now = self._clock.now()

        def change(current: Policy) -> Policy:
            return update_policy(current, now,
                                 max_alerts=max_alerts if max_alerts.strip() else None,
                                 window=window if window.strip() else None)

        result = await self._change_policy(
            caller, change, now,
            lambda p: f"throttle {p.max_alerts} per {format_duration(p.window)}",
            command="throttle", check=policy)
        if isinstance(result, Reply):
            return result
        updated = result.after
        return ok(f"At most {updated.max_alerts} alerts per {format_duration(updated.window)} "
                   f"here now; the rest arrive as one digest.")

    async def quiet(self, caller: Caller, hours: str = "") -> Reply:
        """Show, set ("22:00-07:00 Europe/Berlin") or turn off ("off") quiet hours."""
        if not hours.strip():
            policy = await self._policy(caller.destination)
            current = f"Quiet hours: {policy.quiet}." if policy.quiet else "Quiet hours: off."
            return ok(current, "Set with /quiet 22:00-07:00 Europe/Berlin, or /quiet off.")
        refused = await self._refuse_unless_moderator(caller, "set quiet hours")
        if refused:
            return refused
        now = self._clock.now()

        def change(current: Policy) -> Policy:
            return update_policy(current, now, quiet=hours)

        result = await self._change_policy(caller, change, now,
                                           lambda p: f"quiet {p.quiet or 'off'}",
                                           command="quiet", check=Policy())
        if isinstance(result, Reply):
            return result
        updated = result.after
        if not result.changed:
            return ok(f"Quiet hours are already {updated.quiet or 'off'}.")
        if updated.quiet is None:
            return ok("Quiet hours are off.")
        return ok(f"Quiet hours: {updated.quiet}. Alerts in that time arrive as one digest "
                   f"when it ends.")

    async def digest(self, caller: Caller, schedule: str = "") -> Reply:
        """Show, set ("daily 09:00 Europe/Berlin [only] [always]") or turn off the digest."""
        if not schedule.strip():
            policy = await self._policy(caller.destination)
            return ok(_sentence(describe_schedule(policy.digest)) + ".",
                      "Set with /digest daily 09:00 Europe/Berlin, /digest weekly mon 09:00 "
                      "Europe/Berlin, add 'only' for no single alerts; /digest off ends it.")
        refused = await self._refuse_unless_moderator(caller, "schedule digests")
        if refused:
            return refused
        now = self._clock.now()

        def change(current: Policy) -> Policy:
            return update_policy(current, now, digest=schedule)

        result = await self._change_policy(caller, change, now,
                                           lambda p: f"digest {p.digest or 'off'}",
                                           command="digest", check=Policy())
        if isinstance(result, Reply):
            return result
        updated = result.after.digest
        if updated is None:
            if not result.changed:
                return ok("There is no scheduled digest here.")
            return ok("Scheduled digest off: changes are posted one by one again.")
        period = period_containing(updated, now)
        first = period.end.astimezone(ZoneInfo(updated.tz))
        lines = [_sentence(describe_schedule(updated)) + ".",
                 f"The first one arrives {first:%Y-%m-%d %H:%M} {updated.tz}."]
        if updated.only:
            lines.append("Changes are no longer posted one by one here, only in the digest.")
        if not updated.always:
            lines.append("A period without changes sends nothing (add 'always' to change that).")
        return ok(*lines)

    async def mute(self, caller: Caller, duration: str = "") -> Reply:
        """Suppress alerts for a while (at most 30 days)."""
        if not duration.strip():
            return self._usage("mute")
        refused = await self._refuse_unless_moderator(caller, "mute alerts")
        if refused:
            return refused
        now = self._clock.now()

        def change(current: Policy) -> Policy:
            return update_policy(current, now, mute=duration)

        result = await self._change_policy(
            caller, change, now, lambda p: f"mute until {_utc(p.mute_until)}",
            command="mute", check=Policy())
        if isinstance(result, Reply):
            return result
        until = _utc(result.after.mute_until)
        span = format_duration((result.after.mute_until or now) - now)
        return ok(f"Muted for {span} (until {until}). Alerts meanwhile are not posted; "
                   f"/unmute ends it early.")

    async def unmute(self, caller: Caller, symbol: str = "") -> Reply:
        """End a mute now; with a symbol, end that token's mute instead."""
        refused = await self._refuse_unless_moderator(caller, "unmute alerts")
        if refused:
            return refused
        now = self._clock.now()
        if symbol.strip():
            token = await self._resolve(symbol, "unmute")
            if isinstance(token, Reply):
                return token
            if await self._store.unmute_token(caller.destination, token.token_id, now,
                                              actor=caller.actor):
                return ok(f"Unmuted {token.symbol}: its alerts are posted here again.")
            return fail(ReplyKind.NOT_FOUND, f"{token.symbol} is not muted here.")

        def change(current: Policy) -> Policy:
            if current.mute_until is None or current.mute_until <= now:
                return current
            return update_policy(current, now, unmute=True)

        result = await self._change_policy(caller, change, now, lambda p: "unmute",
                                           command="unmute")
        if isinstance(result, Reply):
            return result
        if not result.changed:
            return ok("Alerts here are not muted.")
        return ok("Unmuted: new alerts will be posted again.")

    async def charts(self, caller: Caller, setting: str = "") -> Reply:
        """Attach (or stop attaching) a 30-day chart to this chat's grade alerts."""
        if not setting.strip():
            return self._usage("charts")
        try:
            wanted = parse_on_off(setting, "/charts")
        except ValueError as exc:
            return self._usage("charts", str(exc))
        refused = await self._refuse_unless_moderator(caller, "change charts on alerts")
        if refused:
            return refused
        now = self._clock.now()

        def change(current: Policy) -> Policy:
            return replace(current, charts=wanted)

        result = await self._change_policy(
            caller, change, now, lambda p: f"charts {'on' if p.charts else 'off'}",
            command="charts")
        if isinstance(result, Reply):
            return result
        if wanted:
            note = ("" if self._charts is not None
                    else " (this source has no history: alerts stay text-only)")
            return ok("Charts on: TM grade and fundamental grade alerts here come with a "
                      f"30-day chart{note}. /charts off stops it.")
        return ok("Charts off: grade alerts here are text only.")

    async def _change_policy(self, caller: Caller, change: Callable[[Policy], Policy],
                             now: datetime, detail: Callable[[Policy], str], *, command: str,
                             check: Policy | None = None) -> PolicyChange | Reply:
        if check is not None:
            try:
                change(check)  # bad input is refused before anything is written
            except ValueError as exc:
                return self._usage(command, str(exc))
        # One transaction reads and writes, so concurrent commands never undo each other.
        result = await self._store.change_policy(caller.destination, change, now,
                                                 actor=caller.actor, detail=detail)
        if result.changed and self._on_policy_change is not None:
            # Held rows were made due: let the dispatcher decide them under the new policy.
            self._on_policy_change()
        return result

    # -- explanations

    async def why(self, caller: Caller) -> Reply:
        """The last few decisions for the caller's destination and their reasons."""
        records = await self._store.recent_decisions(caller.destination, WHY_LIMIT)
        info = await self._store.destination(caller.destination)
        lines = [explain(r.at, r.change, r.reason, r.detail) for r in records]
        if not lines:
            lines.append("No alerts have been handled for this chat yet.")
        lines.extend(await self.mute_lines(caller.destination))
        if info is not None and info.paused_reason:
            lines.append(f"Alerts here are paused: {info.paused_reason}.")
        return ok(*lines, title="Recent alert decisions")

    async def mute_lines(self, destination: Destination, token_id: int | None = None,
                         ) -> list[str]:
        """/why lines of the token mutes in force here (of one token, when given)."""
        mutes = await self._store.token_mutes(destination, self._clock.now())
        return [token_mute_line(m.token.symbol, m.until) for m in mutes
                if token_id is None or m.token.token_id == token_id]

    # -- delivery check and ids

    async def test(self, caller: Caller) -> Reply:
        """Send one marked test alert here through the real delivery path (moderators)."""
        refused = await self._refuse_unless_moderator(caller, "send a test alert")
        if refused:
            return refused
        result = await self.send_test(caller.destination)
        if result.sent:
            return ok("Test alert sent: delivery to this chat works.")
        return fail(ReplyKind.NOT_FOUND, *result.lines)

    async def send_test(self, destination: Destination) -> AlertTestResult:
        """Send one test alert to any destination (the CLI's `alertbot test`)."""
        if self._send_test is None:
            return AlertTestResult(AlertTestOutcome.NOT_CONFIGURED,
                              ("Test alerts are not available in this setup.",))
        return await self._send_test(destination)

    async def id(self, caller: Caller) -> Reply:
        """This chat's id (and topic or thread id) and the caller's user id."""
        destination = caller.destination
        platform = caller.platform
        chat = destination.chat_id
        thread = destination.thread_id
        where = "Channel id" if platform == "discord" else "Chat id"
        lines = [f"{where}: {chat}"]
        if thread:
            lines.append(f"{'Thread' if platform == 'discord' else 'Topic'} id: {thread}")
        lines.append(f"Your user id: {caller.user_id}")
        option = f" --thread {thread}" if thread else ""
        lines.append(f"Use them in the CLI: alertbot subscribe --platform {platform} "
                     f"--chat {chat}{option} BTC (or alertbot test --platform {platform} "
                     f"--chat {chat}{option}); for the bot's own alerts: "
                     f"ALERTBOT_OPS_DESTINATION={platform}:{chat}")
        return ok(*lines, title="Ids")

    async def help(self, caller: Caller) -> Reply:
        """Usage of every command, and who may use which."""
        lines = [f"{c.usage}: {c.description}" for c in COMMANDS]
        rule = _MODERATOR_RULE.get(caller.platform, "moderators")
        lines.append(f"Subscribing, throttle changes, quiet hours, mutes and test alerts are "
                     f"for {rule}.")
        return ok(*lines, title="Token Metrics alert bot")

    async def start(self, caller: Caller) -> Reply:
        """Greeting (Telegram's /start): what the bot does, then help."""
        usage = await self.help(caller)
        intro = ("I post changes in Token Metrics trading signals and grades. Try /signal BTC, "
                 "or /subscribe BTC to get alerts here.")
        return ok(intro, *usage.lines, title=usage.title)

    # -- helpers

    async def _policy(self, destination: Destination) -> Policy:
        """The destination's policy (the defaults before it has one)."""
        info = await self._store.destination(destination)
        return info.policy if info else Policy()

    async def _refuse_unless_moderator(self, caller: Caller, action: str) -> Reply | None:
        if await caller.moderator():
            return None
        rule = _MODERATOR_RULE.get(caller.platform, "moderators")
        return fail(ReplyKind.REFUSED, f"Sorry, only {rule} can {action}.")

    async def _resolve(self, symbol: str, command: str) -> Token | Reply:
        if not symbol.strip():
            return fail(ReplyKind.USAGE, "Name a token, e.g. BTC.")
        try:
            return await self._lookup.resolve(symbol)
        except InvalidSymbol as exc:
            return self._usage(command, str(exc))
        except LookupFailed as exc:
            return fail(ReplyKind.NOT_FOUND, str(exc))

    async def _target(self, target: str, command: str) -> tuple[int, str] | Reply:
        if target.strip().lower() == "all":
            return ALL_TOKENS, "all tokens"
        token = await self._resolve(target, command)
        if isinstance(token, Reply):
            return token
        return token.token_id, f"{token.symbol} ({token.name})"

    @staticmethod
    def _usage(name: str, problem: str = "") -> Reply:
        spec = next((c for c in COMMANDS if c.name == name), None)
        usage = f"Usage: {spec.usage}" if spec else "Send /help for usage."
        if problem:
            text = problem.rstrip(". ")
            return fail(ReplyKind.USAGE, f"{text[0].upper()}{text[1:]}.", usage)
        return fail(ReplyKind.USAGE, usage)

    @staticmethod
    def _missing(missing: Sequence[Kind]) -> tuple[str, ...]:
        if not missing:
            return ()
        return (f"Unavailable right now: {_kind_list(missing)}.",)


def _utc(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC" if at is not None else "never"


def _kind_list(kinds: Sequence[Kind]) -> str:
    return ", ".join(k.label for k in kinds)


def _sentence(text: str) -> str:
    """`text` with a capital first letter (the rest kept: time zone names are proper)."""
    return text[:1].upper() + text[1:]
