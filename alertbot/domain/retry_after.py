"""Retry-After values (RFC 9110 §10.2.3) as seconds to wait: delta-seconds or an HTTP-date."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRY_AFTER_MAX = 3600.0
"""Longest wait taken from a header: a longer one is more likely a wrong clock or a broken
header than a real wait, alerts that late are stale anyway, and asking again costs a request."""

# Decimal seconds are accepted too: Discord's X-RateLimit-Reset-After is "1.234".
_SECONDS = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)", re.ASCII)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait, within [0, RETRY_AFTER_MAX]; None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if _SECONDS.fullmatch(text):
        seconds = float(text)  # only overflow can make it infinite: clamped below
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        # "-0000" dates come back naive; HTTP-dates are always GMT.
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    if math.isnan(seconds):
        return None
    return min(max(0.0, seconds), RETRY_AFTER_MAX)
