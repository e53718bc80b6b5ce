"""The Catalog role on SQLite: known tokens."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import aiosqlite

from alertbot.domain.models import Token
from alertbot.store.sqlite.connection import SqliteConnection
from alertbot.store.sqlite.rows import ts


async def write_tokens(db: aiosqlite.Connection, tokens: Iterable[Token], now: datetime) -> None:
    """Insert or update tokens inside the caller's transaction (a known slug is kept)."""
    await db.executemany(
        "INSERT INTO tokens (token_id, symbol, name, slug, updated_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (token_id) DO UPDATE SET symbol = excluded.symbol, name = excluded.name,"
        " slug = CASE WHEN excluded.slug != '' THEN excluded.slug ELSE tokens.slug END,"
        " updated_at = excluded.updated_at",
        [(t.token_id, t.symbol.upper(), t.name, t.slug, ts(now)) for t in tokens],
    )


class SqliteCatalog(SqliteConnection):
    """Tokens by id, symbol and prefix."""

    async def upsert_tokens(self, tokens: Sequence[Token], now: datetime) -> None:
        """Remember tokens."""
        if not tokens:
            return
        async with self._tx() as db:
            await write_tokens(db, tokens, now)

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
        """Tokens whose symbol or name starts with a prefix."""
        text = prefix.strip()
        pattern = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = await self._fetchall(
            "SELECT token_id, symbol, name, slug FROM tokens "
            "WHERE symbol LIKE ? ESCAPE '\\' OR name LIKE ? ESCAPE '\\' "
            "ORDER BY CASE WHEN symbol = ? THEN 0 WHEN symbol LIKE ? ESCAPE '\\' THEN 1 ELSE 2 END,"
            " length(symbol), symbol LIMIT ?",
            (pattern, pattern, text.upper(), pattern, limit),
        )
        return [Token(*row) for row in rows]
