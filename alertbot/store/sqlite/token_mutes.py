"""The TokenMutes role on SQLite: per-destination token mutes and the alerts buttons name."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from alertbot.domain.models import Destination, Token
from alertbot.ports.store import TokenMute, TokenMuteResult
from alertbot.store.sqlite.audit import write_audit
from alertbot.store.sqlite.connection import SqliteConnection
from alertbot.store.sqlite.reads import SharedReads
from alertbot.store.sqlite.rows import dest_params, dt, ts

_MUTE_COLUMNS = ("m.platform, m.chat_id, m.thread_id, m.token_id, m.until, m.created_at,"
                 " m.actor, t.symbol, t.name, t.slug")
_MUTE_FROM = (" FROM token_mutes m LEFT JOIN tokens t ON t.token_id = m.token_id"
              " WHERE m.platform = ? AND m.chat_id = ? AND m.thread_id = ?")
MUTES_IN_FORCE = (f"SELECT {_MUTE_COLUMNS}{_MUTE_FROM} AND m.until > ?"
                  " ORDER BY t.symbol, m.token_id")
"""A destination's mutes in force at a time, by symbol."""


def _mute_from(r: Sequence[Any]) -> TokenMute:
    token_id = int(r[3])
    symbol = str(r[7]) if r[7] is not None else f"token {token_id}"
    token = Token(token_id, symbol, str(r[8] or symbol), str(r[9] or ""))
    return TokenMute(Destination(r[0], r[1], r[2]), token, dt(r[4]), dt(r[5]), r[6])


class SqliteTokenMutes(SharedReads, SqliteConnection):
    """Token mutes per destination, audited when they change."""

    async def mute_token(self, destination: Destination, token_id: int, until: datetime,
                         now: datetime, actor: str = "") -> TokenMuteResult:
        """Mute a token for a destination unless a mute is already in force."""
        params = (*dest_params(destination), token_id)
        async with self._tx() as db:
            async with db.execute(f"SELECT {_MUTE_COLUMNS}{_MUTE_FROM} AND m.token_id = ?"
                                  " AND m.until > ?", (*params, ts(now))) as cur:
                current = await cur.fetchone()
            if current is not None:
                return TokenMuteResult(_mute_from(current), created=False)
            await db.execute(
                "INSERT INTO token_mutes (platform, chat_id, thread_id, token_id, until,"
                " created_at, actor) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (platform, chat_id, thread_id, token_id) DO UPDATE SET"
                " until = excluded.until, created_at = excluded.created_at,"
                " actor = excluded.actor",
                (*params, ts(until), ts(now), actor))
            async with db.execute(f"SELECT {_MUTE_COLUMNS}{_MUTE_FROM} AND m.token_id = ?",
                                  params) as cur:
                row = await cur.fetchone()
            assert row is not None, "the row was just written"
            mute = _mute_from(row)
            await write_audit(db, destination, "mute_token",
                              f"mute {mute.token.symbol} until {until:%Y-%m-%d %H:%M} UTC",
                              now, actor)
        return TokenMuteResult(mute, created=True)

    async def unmute_token(self, destination: Destination, token_id: int, now: datetime,
                           actor: str = "") -> bool:
        """End a token's mute now; whether one was in force."""
        params = (*dest_params(destination), token_id)
        async with self._tx() as db:
            async with db.execute(f"SELECT {_MUTE_COLUMNS}{_MUTE_FROM} AND m.token_id = ?",
                                  params) as cur:
                row = await cur.fetchone()
            if row is None:
                return False
            await db.execute("DELETE FROM token_mutes WHERE platform = ? AND chat_id = ?"
                             " AND thread_id = ? AND token_id = ?", params)
            mute = _mute_from(row)
            if mute.until <= now:
                return False  # it had ended: only the leftover row went
            await write_audit(db, destination, "unmute_token", f"unmute {mute.token.symbol}",
                              now, actor)
        return True

    async def token_mutes(self, destination: Destination, now: datetime) -> list[TokenMute]:
        """Mutes in force for a destination, by symbol."""
        rows = await self._fetchall(MUTES_IN_FORCE, (*dest_params(destination), ts(now)))
        return [_mute_from(r) for r in rows]
