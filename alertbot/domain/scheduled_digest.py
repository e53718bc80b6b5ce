"""Scheduled digests: schedules, periods, the missed-period rule, summaries and their message.

Pure: no IO, time is a parameter. Not to be confused with the throttle's digest, which bundles
alerts held by a budget or quiet hours into one message: a scheduled digest summarises a whole
day or week for a destination at a local time its moderators chose.

Periods. A schedule's boundaries are its local time on each day (daily) or on its weekday
(weekly), in its time zone; a period runs from one boundary (inclusive) to the next
(exclusive), so every instant lies in exactly one period and periods are contiguous. A local
time that does not exist on a day (the clock jumps over it when daylight saving starts) moves
forward by the length of the jump (02:30 becomes 03:30), and a local time that happens twice
(when daylight saving ends) means its first occurrence: either way each day has exactly one
boundary. A period is named by its kind and the local date of the boundary that ends it
("daily:2026-11-30"); its digest is due at that boundary.

Missed periods. A period whose end passed while the bot was down gets its digest when the bot
starts if it ended less than MISSED_GRACE ago; an older one is recorded as skipped instead.

Storage. A digest travels the outbox as a Change of kind SCHEDULED_DIGEST (like operator
alerts): `from_label` holds the period key, `to_label` the title, `cause` the summary as JSON,
`source_ts` the period's end. Its change id hashes the destination and the period, so creating
it again (another tick, a restart) adds nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from alertbot.domain.models import (
    ALL_KINDS,
    WEEKDAYS,
    Change,
    Destination,
    DigestSchedule,
    Direction,
    Kind,
    Message,
    Token,
)
from alertbot.domain.parsing import parse_clock, parse_timezone, shown
from alertbot.domain.wording import ARROW, headline, movement

MISSED_GRACE = timedelta(hours=6)
"""A period that ended less than this long ago is still summarised; an older one is skipped."""
MAX_MISSED = 7
"""Periods looked back at on each check: older missed ones are not recorded one by one."""
MAX_TOKENS = 15
"""Tokens listed under "changes by token"; the rest are counted."""
MAX_LINES_PER_TOKEN = 4
MAX_MOVERS = 3
"""Entries in each of "biggest upgrades" and "biggest downgrades"."""
DIGEST_TOKEN = Token(0, "DIGEST", "scheduled digest")
"""Stand-in token of scheduled digest changes; never added to the catalog."""
GRADE_KINDS = (Kind.TM_GRADE, Kind.FUNDAMENTAL)
USAGE = ("daily HH:MM [TZ] | weekly DAY HH:MM [TZ] | off, then optionally 'only' (no single "
         "alerts) and 'always' (also for a period without changes)")


# ---------------------------------------------------------------------------- schedules


def parse_schedule(text: str, now: datetime) -> DigestSchedule | None:
    """"daily 09:00 Europe/Berlin only" -> a schedule set at `now`; "off" -> None.

    Raises ValueError with a user-presentable message.
    """
    words = text.split()
    if not words:
        raise ValueError(f"use {USAGE}")
    first = words[0].lower()
    if first == "off":
        if len(words) > 1:
            raise ValueError("'off' takes nothing after it")
        return None
    if first not in ("daily", "weekly"):
        raise ValueError(f"'{shown(words[0], 20)}' is not daily, weekly or off")
    rest = words[1:]
    weekday = 0
    if first == "weekly":
        if not rest:
            raise ValueError("name the day, e.g. weekly mon 09:00 Europe/Berlin")
        weekday = parse_weekday(rest[0])
        rest = rest[1:]
    if not rest:
        raise ValueError("name the time, e.g. daily 09:00 Europe/Berlin")
    at = parse_clock(rest[0])
    rest = rest[1:]
    flags = {"only": False, "always": False}
    tz = "UTC"
    for position, word in enumerate(rest):
        lowered = word.lower()
        if lowered in flags:
            if flags[lowered]:
                raise ValueError(f"'{lowered}' is given twice")
            flags[lowered] = True
        elif position == 0:
            tz = parse_timezone(word)
        else:
            raise ValueError(f"unexpected '{shown(word, 20)}'; after the time come an optional "
                             "time zone, then 'only' and 'always'")
    return DigestSchedule(weekly=first == "weekly", at=at, tz=tz, weekday=weekday,
                          only=flags["only"], always=flags["always"], since=now)


def parse_weekday(text: str) -> int:
    """"mon", "Monday" -> 0 ... "sun" -> 6."""
    word = text.strip().lower()
    for index, name in enumerate(WEEKDAYS):
        if len(word) >= 3 and (word == name or
                               (len(word) > 3 and _FULL_DAYS[index].startswith(word))):
            return index
    raise ValueError(f"'{shown(text, 12)}' is not a weekday; use mon, tue, wed, thu, fri, "
                     "sat or sun")


_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def schedule_from_spec(spec: str, since: datetime | None) -> DigestSchedule | None:
    """A stored schedule from its spec ('' = none) and when it was set."""
    if not spec:
        return None
    schedule = parse_schedule(spec, since or datetime(1970, 1, 1, tzinfo=UTC))
    return None if schedule is None else replace(schedule, since=since)


def describe_schedule(schedule: DigestSchedule | None) -> str:
    """One line for /subscriptions and the CLI."""
    if schedule is None:
        return "scheduled digest: off"
    what = (f"weekly on {_FULL_DAYS[schedule.weekday].capitalize()}s" if schedule.weekly
            else "daily")
    line = f"scheduled digest: {what} at {schedule.at:%H:%M} {schedule.tz}"
    if schedule.only:
        line += ", digests only (no single alerts)"
    if schedule.always:
        line += ", also when nothing changed"
    return line


# ---------------------------------------------------------------------------- periods


@dataclass(frozen=True, slots=True)
class Period:
    """One digest period: [start, end) in UTC, named by `key`."""

    key: str
    start: datetime
    end: datetime


def _boundary(schedule: DigestSchedule, day: date) -> datetime:
    """The schedule's instant on a local day (see the module docstring for DST)."""
    zone = ZoneInfo(schedule.tz)
    # fold=0: a skipped time is read with the offset before the jump (so it moves forward by
    # the jump); a repeated time means its first occurrence.
    return datetime.combine(day, schedule.at, tzinfo=zone).astimezone(UTC)


def _boundaries(schedule: DigestSchedule, instant: datetime) -> list[tuple[datetime, date]]:
    """Boundaries around `instant`, ascending, each with the local day that names it."""
    local_day = instant.astimezone(ZoneInfo(schedule.tz)).date()
    if schedule.weekly:
        anchor = local_day - timedelta(days=(local_day.weekday() - schedule.weekday) % 7)
        days = [anchor + timedelta(days=7 * n) for n in range(-2, 3)]
    else:
        days = [local_day + timedelta(days=n) for n in range(-2, 3)]
    named: dict[datetime, date] = {}
    for day in days:
        at = _boundary(schedule, day)
        # A day a zone skipped entirely maps onto the next day's instant: one boundary.
        named[at] = max(day, named.get(at, day))
    return sorted(named.items())


def _key(schedule: DigestSchedule, day: date) -> str:
    return f"{'weekly' if schedule.weekly else 'daily'}:{day.isoformat()}"


def period_containing(schedule: DigestSchedule, instant: datetime) -> Period:
    """The period that contains `instant` (an aware datetime)."""
    bounds = _boundaries(schedule, instant)
    for (start, _), (end, day) in pairwise(bounds):
        if start <= instant < end:
            return Period(_key(schedule, day), start, end)
    raise AssertionError("boundaries span more than a period on each side")  # pragma: no cover


def previous_period(schedule: DigestSchedule, period: Period) -> Period:
    """The period that ends where `period` starts."""
    return period_containing(schedule, period.start - timedelta(microseconds=1))


@dataclass(frozen=True, slots=True)
class DuePeriod:
    """A finished period that needs a decision: summarise it, or record it as skipped."""

    period: Period
    send: bool


def recent_periods(schedule: DigestSchedule, now: datetime) -> list[Period]:
    """Finished periods that may still need a decision, newest first.

    The last finished period, and before it the ones that ended after the schedule was set,
    at most MAX_MISSED in all. Without `since` only the last one.
    """
    found: list[Period] = []
    period = previous_period(schedule, period_containing(schedule, now))
    while len(found) < MAX_MISSED:
        if schedule.since is not None and period.end <= schedule.since:
            break
        found.append(period)
        if schedule.since is None:
            break
        period = previous_period(schedule, period)
    return found


def due_periods(schedule: DigestSchedule, now: datetime,
                decided: Collection[str]) -> list[DuePeriod]:
    """`recent_periods` not yet decided, oldest first, each with the missed-period rule.

    A period is sent when it ended less than MISSED_GRACE before `now`, else skipped.
    """
    return [DuePeriod(p, now - p.end < MISSED_GRACE)
            for p in reversed(recent_periods(schedule, now)) if p.key not in decided]


def next_due(schedule: DigestSchedule, now: datetime) -> datetime:
    """When the next period ends (the next time a digest may be due)."""
    return period_containing(schedule, now).end


def without_muted(changes: Sequence[Change],
                  token_mutes: Mapping[int, tuple[datetime, datetime]]) -> list[Change]:
    """`changes` less those detected while their token was muted (token id -> start, end).

    The store already leaves out changes decided as muted; this catches the ones detected
    just before the period ended that the dispatcher has not decided yet.
    """
    return [c for c in changes
            if not ((span := token_mutes.get(c.token.token_id)) is not None
                    and span[0] <= c.detected_at < span[1])]


# ---------------------------------------------------------------------------- summaries


@dataclass(frozen=True, slots=True)
class Mover:
    """A grade's net move over the period (first value before it -> last value in it)."""

    symbol: str
    kind: str
    from_value: float
    to_value: float
    from_label: str
    to_label: str

    @property
    def points(self) -> float:
        """Signed move in points."""
        return self.to_value - self.from_value


@dataclass(frozen=True, slots=True)
class TokenLines:
    """One token's changes in the period, oldest first."""

    symbol: str
    name: str
    count: int
    lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GradeLine:
    """A token's current grades, as shown in the digest."""

    symbol: str
    text: str


@dataclass(frozen=True, slots=True)
class DigestSummary:
    """What a scheduled digest says about its period."""

    key: str
    weekly: bool
    tz: str
    start: datetime
    end: datetime
    changes: int
    tokens: tuple[TokenLines, ...]
    more_tokens: int
    upgrades: tuple[Mover, ...]
    downgrades: tuple[Mover, ...]
    grades: tuple[GradeLine, ...]
    chart_token_id: int | None = None
    """The token a chart would show (the one with the most changes); see `chart_token`."""


@dataclass(frozen=True, slots=True)
class CurrentGrade:
    """A token's stored grade of one kind, for the "current grades" section."""

    value: float
    label: str


def build_summary(schedule: DigestSchedule, period: Period, changes: Sequence[Change],
                  grades: Mapping[int, Mapping[Kind, CurrentGrade]]) -> DigestSummary:
    """Summarise a period's changes for one destination (changes by token, movers, grades)."""
    market = sorted((c for c in changes if c.kind in ALL_KINDS),
                    key=lambda c: (c.detected_at, c.change_id))
    by_token: dict[int, list[Change]] = {}
    for change in market:
        by_token.setdefault(change.token.token_id, []).append(change)
    ranked = sorted(by_token.values(), key=lambda cs: (-len(cs), cs[0].token.symbol))
    tokens = tuple(
        TokenLines(cs[0].token.symbol, cs[0].token.name, len(cs),
                   tuple(f"{ARROW[c.direction]} {_short(c)}" for c in cs[-MAX_LINES_PER_TOKEN:]))
        for cs in ranked[:MAX_TOKENS]
    )
    movers = _movers(market)
    upgrades = tuple(sorted((m for m in movers if m.points > 0),
                            key=lambda m: (-m.points, m.symbol))[:MAX_MOVERS])
    downgrades = tuple(sorted((m for m in movers if m.points < 0),
                              key=lambda m: (m.points, m.symbol))[:MAX_MOVERS])
    grade_lines = tuple(
        GradeLine(cs[0].token.symbol, _grade_text(grades.get(cs[0].token.token_id, {})))
        for cs in ranked[:MAX_TOKENS]
        if grades.get(cs[0].token.token_id)
    )
    return DigestSummary(
        key=period.key, weekly=schedule.weekly, tz=schedule.tz, start=period.start,
        end=period.end, changes=len(market), tokens=tokens,
        more_tokens=max(0, len(ranked) - MAX_TOKENS), upgrades=upgrades,
        downgrades=downgrades, grades=grade_lines,
        chart_token_id=ranked[0][0].token.token_id if ranked else None,
    )


def _short(change: Change) -> str:
    """A change without its symbol (the token heads the group)."""
    text = headline(change)
    prefix = change.token.symbol + " "
    text = text[len(prefix):] if text.startswith(prefix) else text
    return f"{text} · {movement(change)}"


def _movers(changes: Sequence[Change]) -> list[Mover]:
    first: dict[tuple[int, Kind], Change] = {}
    last: dict[tuple[int, Kind], Change] = {}
    for change in changes:
        if change.kind not in GRADE_KINDS:
            continue
        series = (change.token.token_id, change.kind)
        first.setdefault(series, change)
        last[series] = change
    return [Mover(first[s].token.symbol, s[1].label, first[s].from_value, last[s].to_value,
                  first[s].from_label, last[s].to_label) for s in first]


def _grade_text(grades: Mapping[Kind, CurrentGrade]) -> str:
    parts = []
    for kind, name in ((Kind.TM_GRADE, "TM"), (Kind.FUNDAMENTAL, "fundamental")):
        grade = grades.get(kind)
        if grade is not None:
            label = f" ({grade.label})" if grade.label else ""
            parts.append(f"{name} {grade.value:.1f}{label}")
    return " · ".join(parts)


# ---------------------------------------------------------------------------- JSON and changes


def summary_to_json(summary: DigestSummary) -> str:
    """The summary as stored in the digest change (compact JSON)."""
    return json.dumps({
        "key": summary.key, "weekly": summary.weekly, "tz": summary.tz,
        "start": summary.start.isoformat(), "end": summary.end.isoformat(),
        "changes": summary.changes,
        "tokens": [[t.symbol, t.name, t.count, list(t.lines)] for t in summary.tokens],
        "more_tokens": summary.more_tokens,
        "upgrades": [_mover_json(m) for m in summary.upgrades],
        "downgrades": [_mover_json(m) for m in summary.downgrades],
        "grades": [[g.symbol, g.text] for g in summary.grades],
        "chart_token_id": summary.chart_token_id,
    }, separators=(",", ":"), ensure_ascii=False)


def _mover_json(mover: Mover) -> list[Any]:
    return [mover.symbol, mover.kind, mover.from_value, mover.to_value, mover.from_label,
            mover.to_label]


def summary_from_json(text: str) -> DigestSummary:
    """The summary stored by `summary_to_json`."""
    data = json.loads(text)
    return DigestSummary(
        key=data["key"], weekly=data["weekly"], tz=data["tz"],
        start=datetime.fromisoformat(data["start"]), end=datetime.fromisoformat(data["end"]),
        changes=data["changes"],
        tokens=tuple(TokenLines(s, n, c, tuple(ls)) for s, n, c, ls in data["tokens"]),
        more_tokens=data["more_tokens"],
        upgrades=tuple(Mover(*m) for m in data["upgrades"]),
        downgrades=tuple(Mover(*m) for m in data["downgrades"]),
        grades=tuple(GradeLine(s, t) for s, t in data["grades"]),
        chart_token_id=data.get("chart_token_id"),
    )


def summary_payload(change: Change) -> dict[str, Any]:
    """The stored summary of a digest change as a JSON object (outbound webhooks)."""
    loaded: dict[str, Any] = json.loads(change.cause)
    return loaded


def digest_change_id(destination: Destination, key: str) -> str:
    """Stable identity of one destination's digest of one period."""
    raw = f"digest|{destination.platform}|{destination.chat_id}|{destination.thread_id}|{key}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def digest_change(destination: Destination, summary: DigestSummary, now: datetime) -> Change:
    """The change that carries a digest through the outbox."""
    return Change(
        change_id=digest_change_id(destination, summary.key),
        token=DIGEST_TOKEN,
        kind=Kind.SCHEDULED_DIGEST,
        from_value=0.0,
        to_value=float(summary.changes),
        direction=Direction.UP,
        source_ts=summary.end,
        detected_at=now,
        from_label=summary.key,
        to_label=digest_title(summary),
        cause=summary_to_json(summary),
    )


def chart_token(change: Change) -> int | None:
    """The token whose chart goes with a digest, when charts are on for its destination."""
    return summary_from_json(change.cause).chart_token_id


# ---------------------------------------------------------------------------- message


def digest_title(summary: DigestSummary) -> str:
    """E.g. "Daily digest · 2026-11-29 09:00 → 2026-11-30 09:00 Europe/Berlin"."""
    zone = ZoneInfo(summary.tz)
    start, end = summary.start.astimezone(zone), summary.end.astimezone(zone)
    what = "Weekly digest" if summary.weekly else "Daily digest"
    return f"{what} · {start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} {summary.tz}"


def _mover_line(mover: Mover) -> str:
    arrow = ARROW[Direction.UP if mover.points > 0 else Direction.DOWN]
    labels = (f" ({mover.from_label} → {mover.to_label})"
              if mover.from_label and mover.from_label != mover.to_label else "")
    return (f"{arrow} {mover.symbol} {mover.kind} {mover.from_value:.1f} → "
            f"{mover.to_value:.1f} ({mover.points:+.1f}){labels}")


def digest_lines(summary: DigestSummary) -> list[str]:
    """The digest's body, one string per line, sections headed by a line ending in ':'."""
    if not summary.changes:
        return ["No signal or grade changes in this period."]
    count = len(summary.tokens) + summary.more_tokens
    lines = [f"{summary.changes} change{'s' if summary.changes != 1 else ''} across {count} "
             f"token{'s' if count != 1 else ''}."]
    for title, movers in (("Biggest upgrades:", summary.upgrades),
                          ("Biggest downgrades:", summary.downgrades)):
        if movers:
            lines += ["", title, *(_mover_line(m) for m in movers)]
    lines += ["", "Changes by token:"]
    for token in summary.tokens:
        lines.append(f"{token.symbol} ({token.name}): {token.count} "
                     f"change{'s' if token.count != 1 else ''}")
        hidden = token.count - len(token.lines)
        if hidden > 0:
            lines.append(f"  … {hidden} earlier")
        lines += [f"  {line}" for line in token.lines]
    if summary.more_tokens:
        lines.append(f"… and {summary.more_tokens} more tokens")
    if summary.grades:
        lines += ["", "Current grades:", *(f"{g.symbol}: {g.text}" for g in summary.grades)]
    return lines


def render_scheduled_digest(change: Change) -> Message:
    """The message of a digest change (its summary was fixed when the period ended)."""
    summary = summary_from_json(change.cause)
    return Message(
        title=change.to_label,
        lines=tuple(digest_lines(summary)),
        link="",
        direction=None,
        timestamp=summary.end,
        changes=(change,),
        scheduled=True,
    )

