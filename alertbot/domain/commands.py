"""The chat command table and the platform-neutral replies handlers return."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from alertbot.domain.charts import ChartImage
from alertbot.domain.models import Message


class ReplyKind(enum.StrEnum):
    """What kind of answer a Reply is."""

    OK = "ok"
    USAGE = "usage"
    """Bad or missing arguments."""
    REFUSED = "refused"
    """The caller may not do this here."""
    NOT_FOUND = "not_found"
    """Unknown symbol, nothing to remove, lookup unavailable."""
    INTERNAL = "internal"
    """Something failed on our side (a bug, the database); nothing the caller did."""


@dataclass(frozen=True, slots=True)
class Reply:
    """A platform-neutral answer: plain-text lines (the binding escapes and formats them)."""

    lines: tuple[str, ...] = ()
    title: str = ""
    """Short heading, shown bold where the platform can."""
    message: Message | None = None
    """A rendered lookup (/signal, /grade), shown before `lines`."""
    kind: ReplyKind = ReplyKind.OK
    image: ChartImage | None = None
    """A chart to send with the reply; `lines` then hold its caption (the text alternative)."""

    @property
    def error(self) -> bool:
        """A refusal or a user mistake; nothing was changed."""
        return self.kind is not ReplyKind.OK

    @property
    def ephemeral(self) -> bool:
        """Show only to the caller where the platform can (Discord); errors are."""
        return self.error

    @property
    def text(self) -> str:
        """Plain-text rendering of the whole reply."""
        parts: list[str] = []
        if self.message is not None:
            parts.append(self.message.text)
        if self.title:
            parts.append(self.title)
        parts.extend(self.lines)
        return "\n".join(parts)


def ok(*lines: str, title: str = "") -> Reply:
    return Reply(tuple(lines), title=title)


def fail(kind: ReplyKind, *lines: str) -> Reply:
    return Reply(tuple(lines), kind=kind)


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One chat command: its name, usage, a short description and who may use it."""

    name: str
    usage: str
    description: str
    """At most 100 characters (Discord's limit for slash command descriptions)."""
    moderator: bool
    """Changes settings; shown to moderators only where the platform can scope menus."""
    options: tuple[str, ...] = field(default=())
    """Argument names in order, for platforms with structured options."""


COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec("signal", "/signal SYMBOL", "Latest daily and hourly trading signal of a token",
                False, ("symbol",)),
    CommandSpec("grade", "/grade SYMBOL", "TM grade and fundamental grade of a token", False,
                ("symbol",)),
    CommandSpec("chart", "/chart SYMBOL [30d|90d|1y|drivers]",
                "Grade-history chart of a token (drivers: what moves its fundamental grade)",
                False, ("symbol", "range")),
    CommandSpec("subscribe", "/subscribe SYMBOL|all [kinds]",
                "Post changes of a token (or all) here; kinds: signal, hourly, tm_grade, "
                "fundamental", True, ("symbol", "kinds")),
    CommandSpec("unsubscribe", "/unsubscribe SYMBOL|all [kinds]",
                "Stop posting changes of a token here (all: every subscription)", True,
                ("symbol", "kinds")),
    CommandSpec("subscriptions", "/subscriptions",
                "What this chat receives, and its throttle settings", False),
    CommandSpec("throttle", "/throttle [MAX WINDOW]",
                "Show or set the alert budget, e.g. /throttle 5 1h (extra alerts come as a "
                "digest)", False, ("max_alerts", "window")),
    CommandSpec("quiet", "/quiet HH:MM-HH:MM [TZ] | off",
                "Hold alerts during quiet hours, e.g. /quiet 22:00-07:00 Europe/Berlin", True,
                ("hours",)),
    CommandSpec("mute", "/mute DURATION", "Stop alerts for a while, e.g. /mute 2h", True,
                ("duration",)),
    CommandSpec("unmute", "/unmute [SYMBOL]",
                "End a mute now; with a symbol, end that token's mute (Mute button)", True,
                ("symbol",)),
    CommandSpec("digest", "/digest daily HH:MM [TZ] | weekly DAY HH:MM [TZ] | off [only] [always]",
                "Daily or weekly summary here, e.g. /digest daily 09:00 Europe/Berlin (only: no "
                "single alerts)", True, ("schedule",)),
    CommandSpec("why", "/why", "The last few alert decisions here and their reasons", False),
    CommandSpec("charts", "/charts on|off",
                "Attach a 30-day chart to TM grade and fundamental grade alerts here", True,
                ("setting",)),
    CommandSpec("test", "/test", "Send one marked test alert here to check that delivery works",
                True),
    CommandSpec("id", "/id", "This chat's id (and topic or thread id) and your user id", False),
    CommandSpec("help", "/help", "How to use this bot", False),
)
COMMAND_NAMES = frozenset(c.name for c in COMMANDS) | {"start"}
"""Every command `CommandCore.handle` answers (`start` is Telegram's greeting)."""


def split_args(text: str) -> list[str]:
    """Arguments typed after a command, split on whitespace."""
    return text.split()


TEST_ALERT_TITLE = "🧪 Test alert from alertbot — delivery works"


def test_alert_message(now: datetime) -> Message:
    """The one clearly marked test alert `/test` and `alertbot test` send (no change behind it)."""
    return Message(
        title=TEST_ALERT_TITLE,
        lines=("This is a test sent on request: no signal or grade changed.",
               "Real alerts for this chat will arrive here, formatted like this."),
        link="",
        direction=None,
        timestamp=now,
        changes=(),
    )
