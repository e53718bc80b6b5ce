"""The validity window of a reading's source timestamp, shared by polled and pushed readings.

A reading dated in the future would make every genuine later reading look stale (detection
ignores readings older than the stored one), freezing its series until that date. A reading
dated before any crypto asset existed is a broken value, not history.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

MAX_FUTURE_SKEW = timedelta(minutes=10)
"""How far ahead of `now` a source timestamp may be (clock skew between hosts)."""
EARLIEST = datetime(2009, 1, 3, tzinfo=UTC)
"""The Bitcoin genesis block: no market data can be older."""
MAX_TOKEN_ID = 2**63 - 1
"""Token ids are stored as signed 64-bit integers."""


def timestamp_problem(source_ts: datetime, now: datetime, *,
                      max_skew: timedelta = MAX_FUTURE_SKEW,
                      not_before: datetime | None = None) -> str | None:
    """Why a reading dated `source_ts` cannot be accepted at `now`, or None when it can.

    `not_before` is when the token started trading, where that is known; the floor is
    EARLIEST otherwise. Both datetimes must be timezone-aware.
    """
    floor = max(EARLIEST, not_before) if not_before is not None else EARLIEST
    if source_ts < floor:
        return f"is before {floor:%Y-%m-%d}"
    if source_ts - now > max_skew:
        return "is in the future"
    return None


def valid_token_id(value: int) -> bool:
    """A positive id that fits the store."""
    return 0 < value <= MAX_TOKEN_ID
