"""The Subscriptions role on PostgreSQL: who wants which kinds of which tokens."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from alertbot.domain.models import (
    ALL_TOKENS,
    Destination,
    Kind,
    Subscription,
    kinds_to_mask,
    mask_to_kinds,
)
from alertbot.ports.store import Watched
from alertbot.store.postgres.audit import write_audit
from alertbot.store.postgres.connection import PostgresConnection, pg, status_count
from alertbot.store.postgres.destinations import (
    insert_destination,
    lock_destination,
    resume_destination,
)
from alertbot.store.sqlite.rows import dest_params, dt, ts
from alertbot.store.sqlite.subscriptions import _kind_names


class PostgresSubscriptions(PostgresConnection):
    """Subscriptions (kinds as a bit mask per destination and token; token 0 = all)."""

    async def subscribe(self, destination: Destination, token_id: int, kinds: Sequence[Kind],
                        now: datetime, actor: str = "") -> bool:
        """Add kinds for a token; resumes a paused destination."""
        mask = kinds_to_mask(tuple(kinds))
        if not mask:
            return False
        params = dest_params(destination)
        async with self._tx() as conn:
            await lock_destination(conn, destination)
            await insert_destination(conn, destination, now)
            old = await conn.fetchval(
                pg("SELECT kinds FROM subscriptions WHERE platform = ? AND chat_id = ?"
                   " AND thread_id = ? AND token_id = ?"), *params, token_id)
            old = int(old or 0)
            resumed = await resume_destination(conn, destination, now, actor)
            if old | mask == old and not resumed:
                return False
            await conn.execute(
                pg("INSERT INTO subscriptions (platform, chat_id, thread_id, token_id, kinds,"
                   " created_at) VALUES (?, ?, ?, ?, ?, ?)"
                   " ON CONFLICT (platform, chat_id, thread_id, token_id)"
                   " DO UPDATE SET kinds = subscriptions.kinds | excluded.kinds"),
                *params, token_id, mask, ts(now),
            )
            await write_audit(conn, destination, "subscribe",
                              f"token {token_id or 'all'}: {_kind_names(mask)}", now, actor)
        return True

    async def unsubscribe(self, destination: Destination, token_id: int | None,
                          kinds: Sequence[Kind], now: datetime, actor: str = "") -> int:
        """Remove kinds for a token, or for every subscription when token_id is None."""
        mask = kinds_to_mask(tuple(kinds))
        params = dest_params(destination)
        where = "platform = ? AND chat_id = ? AND thread_id = ?"
        args: list[Any] = list(params)
        if token_id is not None:
            where += " AND token_id = ?"
            args.append(token_id)
        async with self._tx() as conn:
            status = await conn.execute(
                pg(f"UPDATE subscriptions SET kinds = kinds & ~(?::integer)"
                   f" WHERE {where} AND (kinds & ?) <> 0"),
                mask, *args, mask,
            )
            changed = status_count(status)
            await conn.execute(pg(f"DELETE FROM subscriptions WHERE {where} AND kinds = 0"),
                               *args)
            if changed:
                target = "every token" if token_id is None else f"token {token_id or 'all'}"
                await write_audit(conn, destination, "unsubscribe",
                                  f"{target}: {_kind_names(mask)}", now, actor)
        return changed

    async def subscriptions(self, destination: Destination | None = None) -> list[Subscription]:
        """Subscriptions of one destination, or all of them."""
        sql = (
            "SELECT s.platform, s.chat_id, s.thread_id, s.token_id, s.kinds, s.created_at,"
            " COALESCE(t.symbol, ''), d.paused_reason FROM subscriptions s"
            " JOIN destinations d ON d.platform = s.platform AND d.chat_id = s.chat_id"
            " AND d.thread_id = s.thread_id"
            " LEFT JOIN tokens t ON t.token_id = s.token_id"
        )
        params: tuple[str, ...] = ()
        if destination is not None:
            sql += " WHERE s.platform = ? AND s.chat_id = ? AND s.thread_id = ?"
            params = dest_params(destination)
        # NULLS FIRST: SQLite's order for tokens missing from the catalog.
        sql += (" ORDER BY s.platform, s.chat_id, s.thread_id, s.token_id <> 0,"
                " t.symbol NULLS FIRST, s.token_id")
        return [
            Subscription(
                destination=Destination(row[0], row[1], row[2]),
                token_id=row[3],
                kinds=mask_to_kinds(row[4]),
                created_at=dt(row[5]),
                symbol="all" if row[3] == ALL_TOKENS else row[6],
                paused_reason=row[7],
            )
            for row in await self._fetchall(sql, params)
        ]

    async def watched(self) -> Watched:
        """Tokens and kinds active subscriptions need."""
        rows = await self._fetchall(
            "SELECT DISTINCT s.token_id, s.kinds FROM subscriptions s JOIN destinations d"
            " ON d.platform = s.platform AND d.chat_id = s.chat_id AND d.thread_id = s.thread_id"
            " WHERE d.paused_at IS NULL"
        )
        all_mask = 0
        masks: dict[int, int] = {}
        for token_id, kinds in rows:
            if token_id == ALL_TOKENS:
                all_mask |= kinds
            else:
                masks[token_id] = masks.get(token_id, 0) | kinds
        return Watched(all_mask, masks)
