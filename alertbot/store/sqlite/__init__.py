"""SQLite implementation of the Store port (aiosqlite, WAL, one writer connection).

One module per role (catalog, state, subscriptions, destinations, digests, outbox, audit,
token_mutes, updates, push_queue, fencing, maintenance), each a subclass of the
shared connection in `connection`; SqliteStore combines them over a single connection.
"""

from __future__ import annotations

from alertbot.store.sqlite.audit import SqliteAudit
from alertbot.store.sqlite.catalog import SqliteCatalog
from alertbot.store.sqlite.connection import sqlite_path
from alertbot.store.sqlite.destinations import SqliteDestinations
from alertbot.store.sqlite.digests import SqliteDigests
from alertbot.store.sqlite.fencing import SqliteFencing
from alertbot.store.sqlite.maintenance import SqliteMaintenance
from alertbot.store.sqlite.outbox import SqliteOutbox
from alertbot.store.sqlite.push_queue import SqlitePushQueue
from alertbot.store.sqlite.state import SqliteState
from alertbot.store.sqlite.subscriptions import SqliteSubscriptions
from alertbot.store.sqlite.token_mutes import SqliteTokenMutes
from alertbot.store.sqlite.updates import SqliteUpdates

__all__ = ["SqliteStore"]


class SqliteStore(SqliteCatalog, SqliteState, SqliteSubscriptions, SqliteDigests,
                  SqliteDestinations, SqliteOutbox, SqliteAudit, SqliteTokenMutes, SqliteUpdates,
                  SqlitePushQueue, SqliteFencing, SqliteMaintenance):
    """Store on a SQLite file. All access goes through one connection guarded by a lock."""

    @classmethod
    def from_url(cls, url: str, *, migrate: bool = True) -> SqliteStore:
        """Build from an ALERTBOT_DATABASE_URL."""
        return cls(sqlite_path(url), migrate=migrate)
