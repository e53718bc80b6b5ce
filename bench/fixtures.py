"""Tokens, changes and stores for the benchmarks, built through alertbot's own API."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alertbot.domain.models import (
    ALL_KINDS,
    ALL_TOKENS,
    Change,
    Destination,
    Direction,
    Kind,
    Policy,
    Token,
    make_change_id,
)
from alertbot.store.sqlite import SqliteStore

UNTHROTTLED = Policy(max_alerts=100_000, window=timedelta(hours=1))
"""High enough that no burst here becomes a digest: delivery benchmarks measure pacing."""
SOURCE_DAY = datetime(2025, 1, 1, tzinfo=UTC)


def token(i: int) -> Token:
    """A synthetic token (ids from 1; 0 means "all tokens" in subscriptions)."""
    return Token(i, f"T{i}", f"Token {i}", f"token-{i}")


def flip(tok: Token, *, detected: datetime, day: int = 0, to: float = 1.0) -> Change:
    """A daily-signal flip of `tok`, unique per (token, day, direction)."""
    source = SOURCE_DAY + timedelta(days=day)
    return Change(make_change_id(tok.token_id, Kind.SIGNAL, -to, to, source), tok, Kind.SIGNAL,
                  -to, to, Direction.UP if to > 0 else Direction.DOWN, source, detected,
                  "bearish" if to > 0 else "bullish", "bullish" if to > 0 else "bearish",
                  "flip")


async def open_store(path: Path) -> SqliteStore:
    """A migrated SQLite store at `path`."""
    store = SqliteStore(str(path))
    await store.open()
    return store


async def subscribe_all(store: SqliteStore, destinations: Iterable[Destination], *,
                        token_id: int = ALL_TOKENS, policy: Policy = UNTHROTTLED,
                        since: datetime | None = None) -> int:
    """Subscribe destinations (one transaction each, through the Store API)."""
    created = since or datetime.now(UTC) - timedelta(hours=1)
    count = 0
    for destination in destinations:
        await store.ensure_destination(destination, created, policy=policy)
        await store.subscribe(destination, token_id, ALL_KINDS, created, actor="bench")
        count += 1
    return count


def clone_subscriptions(path: Path, template: Destination, chat_ids: Sequence[str]) -> int:
    """Copy a template destination and its subscriptions to many chat ids, in bulk.

    The template is created through the Store API, so every column holds what alertbot
    itself writes; only the chat id differs. One subscribe() per row would take about a
    minute for 100,000 subscriptions, which is seeding, not what is being measured.
    """
    with sqlite3.connect(path) as db:
        for table in ("destinations", "subscriptions"):
            columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")
                       if row[1] != "id"]
            picked = ", ".join("?" if c == "chat_id" else c for c in columns)
            db.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) SELECT {picked} FROM {table}"
                " WHERE platform = ? AND chat_id = ? AND thread_id = ?",
                ((chat, template.platform, template.chat_id, template.thread_id)
                 for chat in chat_ids),
            )
        total = db.execute("SELECT COUNT(*) FROM subscriptions").fetchone()[0]
    return int(total)


async def seed_subscriptions(path: Path, platform: str, count: int, *, token_id: int,
                             first_chat: int = 1_000_000_000,
                             policy: Policy = UNTHROTTLED) -> SqliteStore:
    """A store with `count` destinations, each subscribed to `token_id` (all kinds)."""
    store = await open_store(path)
    template = Destination(platform, str(first_chat))
    await subscribe_all(store, [template], token_id=token_id, policy=policy)
    await store.close()
    clone_subscriptions(path, template, [str(first_chat + i) for i in range(1, count)])
    return await open_store(path)
