"""The Catalog role on PostgreSQL: known tokens."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import asyncpg

from alertbot.domain.models import Token
from alertbot.store.postgres.connection import PostgresConnection
from alertbot.store.sqlite.rows import ts


async def write_tokens(conn: asyncpg.Connection, tokens: Iterable[Token], now: datetime) -> None:
    """Insert or update tokens inside the caller's transaction (a known slug is kept)."""
    rows = sorted({t.token_id: t for t in tokens}.values(), key=lambda t: t.token_id)
    if not rows:
        return
    # One statement for the whole batch; sorted ids keep concurrent writers from deadlocking.
    await conn.execute(
        "INSERT INTO tokens (token_id, symbol, name, slug, updated_at)"
        " SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[])"
        " AS t(token_id, symbol, name, slug) CROSS JOIN (SELECT $5::float8) AS n(at)"
        " ON CONFLICT (token_id) DO UPDATE SET symbol = excluded.symbol, name = excluded.name,"
        " slug = CASE WHEN excluded.slug <> '' THEN excluded.slug ELSE tokens.slug END,"
        " updated_at = excluded.updated_at",
        [t.token_id for t in rows], [t.symbol.upper() for t in rows], [t.name for t in rows],
        [t.slug for t in rows], ts(now),
    )


class PostgresCatalog(PostgresConnection):
    """Tokens by id, symbol and prefix."""

    async def upsert_tokens(self, tokens: Sequence[Token], now: datetime) -> None:
        """Remember tokens."""
        if not tokens:
            return
        async with self._tx() as conn:
            await write_tokens(conn, tokens, now)

    async def tokens_by_symbol(self, symbol: str) -> list[Token]:
        """Tokens with exactly this symbol."""
        rows = await self._fetchall(
            "SELECT token_id, symbol, name, slug FROM tokens WHERE symbol = ? ORDER BY token_id",
            (symbol.strip().upper(),),
        )
        return [Token(*row) for row in rows]

    async def token(self, token_id: int) -> Token | None:
        """A token by id."""
        row = await self._fetchone(
            "SELECT token_id, symbol, name, slug FROM tokens WHERE token_id = ?", (token_id,)
        )
        return Token(*row) if row else None

    async def search_tokens(self, prefix: str, limit: int) -> list[Token]:
        """Tokens whose symbol or name starts with a prefix (ASCII case-insensitive, as SQLite)."""
        text = prefix.strip()
        pattern = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = await self._fetchall(
            "SELECT token_id, symbol, name, slug FROM tokens "
            "WHERE symbol ILIKE ? ESCAPE '\\' OR name ILIKE ? ESCAPE '\\' "
            "ORDER BY CASE WHEN symbol = ? THEN 0 WHEN symbol ILIKE ? ESCAPE '\\' THEN 1 ELSE 2"
            " END, length(symbol), symbol LIMIT ?",
            (pattern, pattern, text.upper(), pattern, limit),
        )
        return [Token(*row) for row in rows]
