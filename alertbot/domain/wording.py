"""How changes are worded: arrows, dates, headlines and movements, shared by every message."""

from __future__ import annotations

from datetime import datetime

from alertbot.domain.models import Change, Direction, Kind
from alertbot.domain.ops_events import ops_headline

ARROW = {Direction.UP: "▲", Direction.DOWN: "▼"}


def when(ts: datetime, kind: Kind) -> str:
    """Source timestamp as shown to users (daily kinds by date)."""
    if kind is Kind.SIGNAL:
        return ts.strftime("%Y-%m-%d")
    return ts.strftime("%Y-%m-%d %H:%M UTC")


def headline(change: Change) -> str:
    """One-line summary, e.g. "BTC daily signal turned bullish"."""
    if change.kind is Kind.OPS:
        return ops_headline(change)
    if change.kind is Kind.SCHEDULED_DIGEST:
        return change.to_label
    symbol, kind = change.token.symbol, change.kind.label
    if change.kind in (Kind.SIGNAL, Kind.HOURLY):
        return f"{symbol} {kind} turned {change.to_label}"
    if change.cause == "delta":
        points = abs(change.to_value - change.from_value)
        way = "up" if change.direction is Direction.UP else "down"
        return f"{symbol} {kind} {way} {points:.1f} points"
    verb = "upgraded" if change.direction is Direction.UP else "downgraded"
    return f"{symbol} {kind} {verb} to {change.to_label}"


def movement(change: Change) -> str:
    """Old -> new, with scores for grades."""
    if change.kind is Kind.OPS:
        return change.cause or change.from_label
    if change.kind is Kind.SCHEDULED_DIGEST:
        return f"{change.to_value:.0f} changes"
    if change.kind in (Kind.SIGNAL, Kind.HOURLY):
        return f"{change.from_label} → {change.to_label}"
    scores = f"{change.from_value:.1f} → {change.to_value:.1f}"
    if change.from_label == change.to_label:
        return f"{change.to_label}: {scores}"
    return f"{change.from_label} → {change.to_label} ({scores})"
