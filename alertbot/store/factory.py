"""`store_from_url`: the store a database URL names (the composition root's one choice)."""

from __future__ import annotations

from alertbot.ports.store import StoreError
from alertbot.store.copy import Copyable
from alertbot.store.sqlite import SqliteStore
from alertbot.store.urls import is_postgres


def store_from_url(url: str, *, migrate: bool = True) -> Copyable:
    """A (not yet open) store for a database URL; `migrate` False refuses an old schema."""
    if url.startswith("sqlite:///"):
        return SqliteStore.from_url(url, migrate=migrate)
    if is_postgres(url):
        # asyncpg costs start-up time and memory that a SQLite bot never uses
        from alertbot.store.postgres import PostgresStore

        return PostgresStore.from_url(url, migrate=migrate)
    raise StoreError(f"unsupported database URL {url.split(':', 1)[0]}://… (expected "
                     "sqlite:///PATH or postgresql://USER@HOST/DATABASE)")
