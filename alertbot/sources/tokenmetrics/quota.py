"""Token Metrics call budget: the poll plan derived from the monthly quota, and its guard.

Pure: no IO, no clock (time is a parameter). The plan splits `TOKENMETRICS_MONTHLY_CALLS`
into a polling budget and a reserve for lookups, derives the poll interval from the calls one
cycle costs, and decides whether a poll or a lookup may spend calls now. Polling is also
paced through the month, so a subscription list that grew since the start (or an explicit
`ALERTBOT_POLL_INTERVAL` faster than the quota allows) slows polling down instead of
spending the whole month's budget in the first days.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from alertbot.domain.parsing import format_duration

Purpose = Literal["poll", "lookup"]

PLAN_MONTH = timedelta(days=31)
"""The plan assumes the longest month, so every month fits."""
LOOKUP_RESERVE_SHARE = 0.10
MIN_INTERVAL = timedelta(minutes=1)
BURST_SHARE = 0.02
"""Share of the polling budget that may be spent ahead of an even pace through the month."""
BURST_CYCLES = 3
PAUSE_RECHECK = timedelta(hours=1)
"""A paused poller looks again (and says so again) at least this often."""


def month_key(now: datetime) -> str:
    """The calendar month (UTC) a call is counted in, e.g. "2025-07"."""
    return f"{now.astimezone(UTC):%Y-%m}"


def month_bounds(now: datetime) -> tuple[datetime, datetime]:
    """Start and end (exclusive) of the UTC month containing `now`."""
    utc = now.astimezone(UTC)
    start = datetime(utc.year, utc.month, 1, tzinfo=UTC)
    end = datetime(utc.year + utc.month // 12, utc.month % 12 + 1, 1, tzinfo=UTC)
    return start, end


@dataclass(frozen=True, slots=True)
class Usage:
    """Calls spent in one month, by purpose."""

    month: str
    poll: int = 0
    lookup: int = 0

    @property
    def total(self) -> int:
        """Every call of the month."""
        return self.poll + self.lookup

    def add(self, purpose: Purpose, calls: int) -> Usage:
        """This usage with `calls` more (or fewer, never below zero) for a purpose."""
        if purpose == "poll":
            return replace(self, poll=max(0, self.poll + calls))
        return replace(self, lookup=max(0, self.lookup + calls))

    def encode(self) -> str:
        """Stored form."""
        return json.dumps({"month": self.month, "poll": self.poll, "lookup": self.lookup},
                          separators=(",", ":"))

    @classmethod
    def decode(cls, text: str | None, now: datetime) -> Usage:
        """The usage of the month of `now`; a stored older month (or garbage) counts as zero."""
        month = month_key(now)
        if not text:
            return cls(month)
        try:
            data = json.loads(text)
            stored = cls(str(data["month"]), int(data["poll"]), int(data["lookup"]))
        except (ValueError, TypeError, KeyError):
            return cls(month)
        return stored if stored.month == month else cls(month)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why calls may not be spent now, and when to look again."""

    message: str
    retry_after: float
    until: datetime


@dataclass(frozen=True, slots=True)
class QuotaPlan:
    """How the monthly quota is spent: calls per cycle, the interval, the lookup reserve."""

    monthly_calls: int
    calls_per_cycle: int
    interval: timedelta
    explicit: bool = False
    """The interval came from ALERTBOT_POLL_INTERVAL rather than from the quota."""

    @property
    def reserve(self) -> int:
        """Calls kept for lookups; polling never spends them."""
        return math.floor(self.monthly_calls * LOOKUP_RESERVE_SHARE)

    @property
    def poll_budget(self) -> int:
        """Calls polling may spend in a month."""
        return self.monthly_calls - self.reserve

    @property
    def monthly_need(self) -> int:
        """Calls a month of polling at this interval costs."""
        cycles = math.ceil(PLAN_MONTH / self.interval)
        return cycles * self.calls_per_cycle

    @property
    def fits(self) -> bool:
        """Whether polling at this interval stays within the polling budget."""
        return self.monthly_need <= self.poll_budget

    def describe(self) -> str:
        """The plan in one line, for the start-up log and `alertbot check`."""
        seconds = self.interval.total_seconds()
        every = f"{seconds:g}s" if seconds < 10 else format_duration(self.interval)
        head = f"{self.calls_per_cycle} calls per cycle, every {every}"
        tail = f"{self.monthly_calls:,} calls/month ({self.reserve:,} kept for lookups)"
        if self.explicit:
            head += " (ALERTBOT_POLL_INTERVAL)"
        if self.fits:
            return f"{head}, fits {tail}"
        return (f"{head} would need about {self.monthly_need:,} calls/month, more than "
                f"TOKENMETRICS_MONTHLY_CALLS allows: {tail}; polling is paced to stay within "
                f"{self.poll_budget:,} calls")

    @property
    def burst(self) -> int:
        """Calls polling may spend ahead of an even pace through the month."""
        return max(BURST_CYCLES * self.calls_per_cycle,
                   math.ceil(self.poll_budget * BURST_SHARE))

    def refuse_poll(self, usage: Usage, calls: int, now: datetime) -> Refusal | None:
        """Why a poll costing `calls` may not run now (budget spent, or ahead of pace)."""
        start, end = month_bounds(now)
        spent = usage.poll
        if spent + calls > self.poll_budget:
            return _refusal(
                f"Token Metrics budget for polling spent: {spent:,} of {self.poll_budget:,} "
                f"calls used in {usage.month} (TOKENMETRICS_MONTHLY_CALLS="
                f"{self.monthly_calls:,}, {self.reserve:,} kept for lookups); polling paused "
                f"until {end:%Y-%m-%d %H:%M} UTC", end, now)
        month = (end - start).total_seconds()
        allowed = self.poll_budget * (now - start).total_seconds() / month + self.burst
        if spent + calls <= allowed:
            return None
        # When the even pace through the month reaches what this poll needs.
        due = start + timedelta(seconds=(spent + calls - self.burst) / self.poll_budget * month)
        return _refusal(
            f"Token Metrics polling is ahead of its monthly plan ({spent:,} of "
            f"{self.poll_budget:,} calls used in {usage.month}); polling paused until "
            f"{due:%Y-%m-%d %H:%M:%S} UTC", due, now)

    def refuse_lookup(self, usage: Usage, calls: int, now: datetime) -> Refusal | None:
        """Why a lookup costing `calls` may not reach the API now (reserve spent)."""
        if usage.lookup + calls <= self.reserve:
            return None
        _, end = month_bounds(now)
        return _refusal(
            f"the {self.reserve:,} Token Metrics calls kept for lookups in {usage.month} are "
            f"spent; lookups answer from stored readings until {end:%Y-%m-%d} UTC", end, now)


def _refusal(message: str, until: datetime, now: datetime) -> Refusal:
    wait = (until - now).total_seconds()
    return Refusal(message, max(1.0, min(wait, PAUSE_RECHECK.total_seconds())), until)


def plan_quota(monthly_calls: int, calls_per_cycle: int,
               interval: timedelta | None = None) -> QuotaPlan:
    """The plan: an explicit interval is kept; otherwise the fastest one within the budget."""
    calls = max(1, calls_per_cycle)
    if interval is not None:
        return QuotaPlan(monthly_calls, calls, interval, explicit=True)
    probe = QuotaPlan(monthly_calls, calls, PLAN_MONTH)
    cycles = max(1, probe.poll_budget // calls)
    seconds = PLAN_MONTH.total_seconds() / cycles
    # Whole minutes read better in the plan line and only ever make the plan cheaper.
    minutes = math.ceil(seconds / 60)
    derived = max(MIN_INTERVAL, min(PLAN_MONTH, timedelta(minutes=minutes)))
    return QuotaPlan(monthly_calls, calls, derived)
