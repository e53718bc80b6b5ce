"""Parsing of typed-in and pushed values (durations, kinds, quiet hours, timestamps, signals).

Every parser raises ValueError with a short message that can be shown to the user as is.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from alertbot.domain.models import ALL_KINDS, Kind, Mode, QuietHours

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([smhdw])", re.IGNORECASE)
_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_KIND_ALIASES = {
    "signal": Kind.SIGNAL, "signals": Kind.SIGNAL, "daily": Kind.SIGNAL,
    "hourly": Kind.HOURLY,
    "tm_grade": Kind.TM_GRADE, "tm-grade": Kind.TM_GRADE, "grade": Kind.TM_GRADE,
    "tmgrade": Kind.TM_GRADE,
    "fundamental": Kind.FUNDAMENTAL, "fundamental_grade": Kind.FUNDAMENTAL,
    "fundamental-grade": Kind.FUNDAMENTAL,
}
MAX_DURATION = timedelta(days=366)


def shown(text: str, limit: int) -> str:
    """User input as it may be quoted in an error: one line, printable, at most `limit` long."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def parse_duration(text: str, *, allow_zero: bool = False) -> timedelta:
    """"90" (seconds), "90s", "5m", "2h", "1d", "1h30m" -> timedelta, at most a year.

    Only ASCII digits count: "inf", "1e20", "nan" and other float spellings are refused.
    """
    raw = text.strip().lower()
    if not raw:
        raise ValueError("expected a duration such as 30s, 5m, 2h or 1d")
    if raw.startswith("-") and _SECONDS.fullmatch(raw[1:]):
        raise ValueError("a duration cannot be negative")
    if _SECONDS.fullmatch(raw):
        seconds = float(raw)
    else:
        pos, seconds = 0, 0.0
        for match in _DURATION.finditer(raw):
            if raw[pos:match.start()].strip():
                break
            seconds += float(match.group(1)) * _UNITS[match.group(2).lower()]
            pos = match.end()
        if pos == 0 or raw[pos:].strip():
            raise ValueError(
                f"'{shown(text, 20)}' is not a duration; use e.g. 30s, 5m, 2h or 1d"
            ) from None
    if seconds == 0 and not allow_zero:
        raise ValueError("a duration must be longer than zero")
    # Compared as a float: timedelta() of a huge (or infinite) number overflows.
    if not seconds <= MAX_DURATION.total_seconds():
        raise ValueError("a duration cannot be longer than a year")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """Shortest readable form: 90s -> 1m30s, 3600s -> 1h, 0.5s stays 0.5s."""
    if 0 < value.total_seconds() < 1:
        return f"{value.total_seconds():g}s"
    total = round(value.total_seconds())
    if total == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def parse_kinds(text: str | None) -> tuple[Kind, ...]:
    """"signal,hourly" -> kinds; empty or "all" -> every kind."""
    if text is None or not text.strip() or text.strip().lower() == "all":
        return ALL_KINDS
    found: list[Kind] = []
    for part in re.split(r"[,\s]+", text.strip().lower()):
        if not part:
            continue
        kind = _KIND_ALIASES.get(part)
        if kind is None:
            names = ", ".join(k.value for k in ALL_KINDS)
            raise ValueError(f"unknown kind '{shown(part, 20)}'; choose from {names}")
        if kind not in found:
            found.append(kind)
    if not found:  # only separators, e.g. ","
        names = ", ".join(k.value for k in ALL_KINDS)
        raise ValueError(f"name at least one kind: {names}, or all")
    return tuple(k for k in ALL_KINDS if k in found)


def parse_clock(text: str) -> time:
    """"07:30" -> time."""
    match = _CLOCK.match(text.strip())
    if not match:
        raise ValueError(f"'{shown(text, 10)}' is not a time; use HH:MM, e.g. 22:00")
    return time(int(match.group(1)), int(match.group(2)))


def parse_timezone(text: str) -> str:
    """An IANA time zone name such as Europe/Berlin (case-insensitive)."""
    name = text.strip()
    if name.upper() in ("UTC", "Z", "GMT"):
        return "UTC"
    if not re.fullmatch(r"[A-Za-z0-9_+\-/]{1,64}", name) or ".." in name:
        raise ValueError(f"unknown time zone '{shown(name, 40)}'; use a name like Europe/Berlin")
    try:
        ZoneInfo(name)
        return name
    except (ZoneInfoNotFoundError, ValueError):
        pass
    for candidate in available_timezones():
        if candidate.lower() == name.lower():
            return candidate
    raise ValueError(f"unknown time zone '{shown(name, 40)}'; use a name like Europe/Berlin")


def parse_quiet(text: str, default_tz: str = "UTC") -> QuietHours:
    """"22:00-07:00 [Europe/Berlin]" -> QuietHours."""
    parts = text.strip().split()
    if not parts or len(parts) > 2 or "-" not in parts[0]:
        raise ValueError("use HH:MM-HH:MM [time zone], e.g. 22:00-07:00 Europe/Berlin")
    start_text, _, end_text = parts[0].partition("-")
    start, end = parse_clock(start_text), parse_clock(end_text)
    if start == end:
        raise ValueError("quiet hours must start and end at different times")
    tz = parse_timezone(parts[1]) if len(parts) == 2 else default_tz
    return QuietHours(start, end, tz)


def parse_mode(text: str) -> tuple[Kind, Mode]:
    """"signal=silent" -> (Kind.SIGNAL, Mode.SILENT)."""
    kind_text, sep, mode_text = text.strip().partition("=")
    if not sep:
        raise ValueError("use KIND=on|silent|off, e.g. hourly=silent")
    kinds = parse_kinds(kind_text)
    if len(kinds) != 1:
        raise ValueError("name exactly one kind, e.g. hourly=silent")
    try:
        mode = Mode(mode_text.strip().lower())
    except ValueError:
        raise ValueError(
            f"unknown mode '{shown(mode_text, 10)}'; use on, silent or off"
        ) from None
    return kinds[0], mode


MAX_TIMESTAMP_LENGTH = 64
_TREND_WORDS = {"bullish": 1.0, "bearish": -1.0, "neutral": 0.0, "long": 1.0, "short": -1.0}


def parse_timestamp(value: Any) -> datetime:
    """ISO-8601 with `Z` or an offset, or a plain YYYY-MM-DD date, as an aware UTC datetime.

    Raises ValueError for anything else, including times that cannot be expressed in UTC
    (year 1 with a positive offset, year 9999 with a negative one).
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif isinstance(value, str) and value.strip() and len(value) <= MAX_TIMESTAMP_LENGTH:
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"'{shown(text, 40)}' is not an ISO-8601 timestamp") from None
    else:
        raise ValueError("timestamp must be an ISO-8601 string")
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError("timestamp is out of range") from None


def parse_direction(value: Any) -> float:
    """A signal as 1 / -1 / 0, accepting numbers, numeric strings and words."""
    if isinstance(value, bool):
        raise ValueError("signal must be a number or bullish/bearish")
    if isinstance(value, int) and value in (1, 0, -1):
        return float(value)
    if isinstance(value, float):
        number = value
    elif isinstance(value, str) and len(value) <= 40:
        word = value.strip().lower()
        if word in _TREND_WORDS:
            return _TREND_WORDS[word]
        try:
            number = float(word)
        except ValueError:
            number = math.nan
    elif isinstance(value, int | str):
        # Too large or long to be a signal (float() of a huge int overflows).
        raise ValueError("signal must be 1, 0 or -1")
    else:
        raise ValueError("signal must be a number or bullish/bearish")
    if number not in (1.0, 0.0, -1.0):
        raise ValueError(f"signal must be 1, 0 or -1, got {value!r:.40}")
    return number
