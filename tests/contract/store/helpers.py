"""Data and steps the Store contract modules share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alertbot.domain.models import (
    ALL_KINDS,
    Change,
    Destination,
    Direction,
    Kind,
    Reason,
    Token,
    TrackedState,
    make_change_id,
)
from alertbot.domain.ops_events import key_rejected, ops_change
from alertbot.domain.throttle import Decision, Plan
from alertbot.ports.store import PlanKeys, Store

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=365)
BTC = Token(3375, "BTC", "Bitcoin", "bitcoin")
ETH = Token(3306, "ETH", "Ethereum", "ethereum")
TG = Destination("telegram", "-1001")
DC = Destination("discord", "444", "555")
CON = Destination("console", "default")
OPS = Destination("telegram", "-100999")


def flip(token: Token = BTC, kind: Kind = Kind.SIGNAL, to: float = 1.0,
         detected: datetime = NOW, source_day: int = 0) -> Change:
    """A signal flip of `token` towards `to`."""
    source = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(days=source_day)
    return Change(make_change_id(token.token_id, kind, -to, to, source), token, kind, -to, to,
                  Direction.UP if to > 0 else Direction.DOWN, source, detected,
                  "bearish" if to > 0 else "bullish", "bullish" if to > 0 else "bearish", "flip")


def tracked(token: Token = BTC, kind: Kind = Kind.SIGNAL, value: float = 1.0) -> TrackedState:
    """A stored detection state."""
    return TrackedState(token.token_id, kind, value, NOW - timedelta(hours=1), label="x",
                        band=2, alerted_value=value, fired_at=NOW - timedelta(days=1))


def ops_alert(at: datetime = NOW) -> Change:
    """An operator alert (rejected API key) raised at `at`."""
    return ops_change(key_rejected("HTTP 401", at), NOW)


async def queued(store: Store, destination: Destination) -> int:
    """Rows still to be delivered to a destination, decided or not."""
    alerts = await store.due_alerts(destination, LATER)
    committed = await store.committed(destination, LATER)
    return len(alerts) + sum(len(c.row_ids) for c in committed)


async def one_row(store: Store, destination: Destination = TG, token: Token = BTC, *,
                  epoch: int = 0) -> int:
    """Subscribe, record one change as the leader of `epoch`; returns its outbox row."""
    await store.subscribe(destination, token.token_id, ALL_KINDS, NOW - timedelta(hours=1))
    await store.record_poll([], [flip(token)], NOW, epoch=epoch)
    (alert,) = await store.due_alerts(destination, NOW)
    return alert.row_id


async def committed_row(store: Store, key: str = "akey", destination: Destination = TG,
                        token: Token = BTC) -> int:
    """One row committed to a single message under `key`; returns the row."""
    row = await one_row(store, destination, token)
    await store.apply_plan(destination, Plan(singles=[Decision(row, Reason.SENT)]),
                           PlanKeys(singles={row: key}), NOW)
    return row


async def finished_rows(store: Store, at: datetime) -> None:
    """One sent and one dead row for TG, with their decisions and message, all at `at`."""
    await store.subscribe(TG, BTC.token_id, ALL_KINDS, at - timedelta(hours=1))
    await store.record_poll([], [flip(detected=at, source_day=0),
                                 flip(to=-1.0, detected=at, source_day=1)], at)
    first, second = await store.due_alerts(TG, at)
    await store.apply_plan(TG, Plan(singles=[Decision(first.row_id, Reason.SENT),
                                             Decision(second.row_id, Reason.SENT)]),
                           PlanKeys(singles={first.row_id: "aone", second.row_id: "atwo"}), at)
    await store.mark_sent(TG, "aone", "m1", at)
    await store.mark_dead(TG, "atwo", "HTTP 400", Reason.DEAD, at)
