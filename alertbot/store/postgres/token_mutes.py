"""The TokenMutes role on PostgreSQL: per-destination token mutes and the alerts buttons name."""

from __future__ import annotations

from datetime import datetime

from alertbot.domain.models import Destination
from alertbot.ports.store import TokenMute, TokenMuteResult
from alertbot.store.postgres.audit import write_audit
from alertbot.store.postgres.connection import PostgresConnection, pg
from alertbot.store.postgres.destinations import lock_destination
from alertbot.store.sqlite.reads import SharedReads
from alertbot.store.sqlite.rows import dest_params, ts
from alertbot.store.sqlite.token_mutes import _MUTE_COLUMNS, _MUTE_FROM, _mute_from


class PostgresTokenMutes(SharedReads, PostgresConnection):
    """Token mutes per destination, audited when they change."""

    async def mute_token(self, destination: Destination, token_id: int, until: datetime,
                         now: datetime, actor: str = "") -> TokenMuteResult:
        """Mute a token for a destination unless a mute is already in force."""
        params = (*dest_params(destination), token_id)
        async with self._tx() as conn:
            # Read, then write: the destination's lock keeps two presses from both creating.
            await lock_destination(conn, destination)
            current = await conn.fetchrow(
                pg(f"SELECT {_MUTE_COLUMNS}{_MUTE_FROM} AND m.token_id = ? AND m.until > ?"),
                *params, ts(now))
            if current is not None:
                return TokenMuteResult(_mute_from(current), created=False)
            await conn.execute(
                pg("INSERT INTO token_mutes (platform, chat_id, thread_id, token_id, until,"
                   " created_at, actor) VALUES (?, ?, ?, ?, ?, ?, ?)"
                   " ON CONFLICT (platform, chat_id, thread_id, token_id) DO UPDATE SET"
                   " until = excluded.until, created_at = excluded.created_at,"
                   " actor = excluded.actor"),
                *params, ts(until), ts(now), actor)
            row = await conn.fetchrow(pg(f"SELECT {_MUTE_COLUMNS}{_MUTE_FROM} AND m.token_id = ?"),
                                      *params)
            assert row is not None, "the row was just written"
            mute = _mute_from(row)
            await write_audit(conn, destination, "mute_token",
                              f"mute {mute.token.symbol} until {until:%Y-%m-%d %H:%M} UTC",
                              now, actor)
        return TokenMuteResult(mute, created=True)

    async def unmute_token(self, destination: Destination, token_id: int, now: datetime,
                           actor: str = "") -> bool:
        """End a token's mute now; whether one was in force."""
        params = (*dest_params(destination), token_id)
        async with self._tx() as conn:
            await lock_destination(conn, destination)
            row = await conn.fetchrow(pg(f"SELECT {_MUTE_COLUMNS}{_MUTE_FROM} AND m.token_id = ?"),
                                      *params)
            if row is None:
                return False
            await conn.execute(pg("DELETE FROM token_mutes WHERE platform = ? AND chat_id = ?"
                                  " AND thread_id = ? AND token_id = ?"), *params)
            mute = _mute_from(row)
            if mute.until <= now:
                return False  # it had ended: only the leftover row went
            await write_audit(conn, destination, "unmute_token", f"unmute {mute.token.symbol}",
                              now, actor)
        return True

    async def token_mutes(self, destination: Destination, now: datetime) -> list[TokenMute]:
        """Mutes in force for a destination, by symbol."""
        rows = await self._fetchall(
            f"SELECT {_MUTE_COLUMNS}{_MUTE_FROM} AND m.until > ?"
            " ORDER BY t.symbol NULLS FIRST, m.token_id", (*dest_params(destination), ts(now)))
        return [_mute_from(r) for r in rows]
