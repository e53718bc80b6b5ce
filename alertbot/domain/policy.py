"""Moderator settings of a destination: parsing, limits and wording, shared by chat and CLI."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from alertbot.domain.models import ALL_KINDS, Policy
from alertbot.domain.parsing import (
    format_duration,
    parse_duration,
    parse_mode,
    parse_quiet,
    shown,
)
from alertbot.domain.scheduled_digest import describe_schedule, parse_schedule

MIN_MAX_ALERTS = 1
MAX_MAX_ALERTS = 1000
MIN_WINDOW = timedelta(minutes=1)
MAX_WINDOW = timedelta(days=7)
MAX_MUTE = timedelta(days=30)
MAX_SETTLE = timedelta(days=7)
"""Longest flap guard: a change held longer than the longest window is news no more."""
MAX_ECHO = 20
"""User input quoted back in an error is cut to this many characters."""


def echo(text: str) -> str:
    """User input as it may be quoted back in an error (one printable line, cut short)."""
    return shown(text, MAX_ECHO)


def describe_policy(policy: Policy) -> list[str]:
    """Readable lines for a destination's policy."""
    lines = [f"throttle: at most {policy.max_alerts} alerts per "
             f"{format_duration(policy.window)} (the rest arrive as one digest)"]
    lines.append(f"quiet hours: {policy.quiet}" if policy.quiet else "quiet hours: off")
    lines.append(f"muted until {policy.mute_until:%Y-%m-%d %H:%M} UTC" if policy.mute_until
                 else "muted: no")
    lines.append(f"flap guard: {format_duration(policy.settle)}" if policy.settle
                 else "flap guard: off")
    modes = ", ".join(f"{k.value}={policy.mode(k).value}" for k in ALL_KINDS)
    lines.append(f"modes: {modes}")
    lines.append(f"charts on grade alerts: {'on' if policy.charts else 'off'}")
    lines.append(describe_schedule(policy.digest))
    return lines


def parse_on_off(text: str, what: str) -> bool:
    """"on" -> True, "off" -> False; raises ValueError naming `what` otherwise."""
    word = text.strip().lower()
    if word not in ("on", "off"):
        raise ValueError(f"{what} is on or off, not '{echo(text.strip())}'")
    return word == "on"


def parse_max_alerts(text: str) -> int:
    """"5" -> 5, within 1..1000; raises ValueError with a user-presentable message."""
    raw = text.strip()
    # isdigit() alone accepts "²" and other digits int() refuses.
    if not (raw.isascii() and raw.isdigit()):
        raise ValueError(f"'{echo(raw)}' is not a whole number of alerts, e.g. 5")
    value = int(raw) if len(raw) <= 9 else MAX_MAX_ALERTS + 1
    if not MIN_MAX_ALERTS <= value <= MAX_MAX_ALERTS:
        raise ValueError(f"the alert budget must be between {MIN_MAX_ALERTS} and "
                         f"{MAX_MAX_ALERTS}")
    return value


def parse_window(text: str) -> timedelta:
    """"1h" -> a throttle window between 1 minute and 7 days."""
    window = parse_duration(text)
    if window < MIN_WINDOW:
        raise ValueError(f"the window must be at least {format_duration(MIN_WINDOW)}")
    if window > MAX_WINDOW:
        raise ValueError(f"the window can be at most {format_duration(MAX_WINDOW)}")
    return window


def parse_mute(text: str) -> timedelta:
    """"2h" -> a mute duration of at most 30 days."""
    duration = parse_duration(text)
    if duration > MAX_MUTE:
        raise ValueError(f"a mute can last at most {format_duration(MAX_MUTE)}; "
                         f"unsubscribe to stop alerts for longer")
    return duration


def update_policy(policy: Policy, now: datetime, *, max_alerts: str | int | None = None,
                  window: str | None = None, quiet: str | None = None,
                  mute: str | None = None, unmute: bool = False, settle: str | None = None,
                  modes: Sequence[str] = (), charts: str | None = None,
                  digest: str | None = None) -> Policy:
    """`policy` with the given settings changed (None = keep); raises ValueError.

    Shared by the chat commands and `alertbot throttle`. `quiet` is "HH:MM-HH:MM [TZ]" or
    "off"; `modes` are "KIND=on|silent|off" items; `digest` is a scheduled digest
    ("daily 09:00 Europe/Berlin [only] [always]", "weekly mon 09:00 …" or "off").
    """
    changes: dict[str, object] = {}
    if max_alerts is not None:
        changes["max_alerts"] = parse_max_alerts(str(max_alerts))
    if window is not None:
        changes["window"] = parse_window(window)
    if quiet is not None:
        changes["quiet"] = None if quiet.strip().lower() == "off" else parse_quiet(quiet)
    if mute is not None and unmute:
        raise ValueError("mute or unmute, not both")
    if mute is not None:
        changes["mute_until"] = now + parse_mute(mute)
    if unmute:
        changes["mute_until"] = None
    if settle is not None:
        guard = (timedelta(0) if settle.strip().lower() == "off"
                 else parse_duration(settle, allow_zero=True))
        if guard > MAX_SETTLE:
            raise ValueError(f"the flap guard can wait at most {format_duration(MAX_SETTLE)}")
        changes["settle"] = guard
    if modes:
        merged = dict(policy.modes)
        for item in modes:
            kind, mode = parse_mode(item)
            merged[kind] = mode
        changes["modes"] = merged
    if charts is not None:
        changes["charts"] = parse_on_off(charts, "charts")
    if digest is not None:
        schedule = parse_schedule(digest, now)
        if schedule is not None and policy.digest is not None and \
                schedule.spec == policy.digest.spec:
            schedule = policy.digest  # the same schedule again keeps when it was set
        changes["digest"] = schedule
    return replace(policy, **changes)  # type: ignore[arg-type]
