"""PostgreSQL implementation of the Store port (asyncpg, a small pool, several processes).

One module per role (catalog, state, subscriptions, destinations, digests, outbox, audit,
token_mutes, updates, push_queue, fencing, maintenance), each a subclass of the shared pool
in `connection`, as in store/sqlite/ whose column conversions (`alertbot.store.sqlite.rows`)
and SQL shapes it shares; PostgresStore combines them over one pool.
"""

from __future__ import annotations

from datetime import datetime

from alertbot.domain.models import Destination
from alertbot.ports.store import DeliveryView
from alertbot.store.postgres.audit import PostgresAudit
from alertbot.store.postgres.catalog import PostgresCatalog
from alertbot.store.postgres.destinations import PostgresDestinations
from alertbot.store.postgres.digests import PostgresDigests
from alertbot.store.postgres.fencing import PostgresFencing
from alertbot.store.postgres.maintenance import PostgresMaintenance
from alertbot.store.postgres.outbox import PostgresOutbox
from alertbot.store.postgres.push_queue import PostgresPushQueue
from alertbot.store.postgres.state import PostgresState
from alertbot.store.postgres.subscriptions import PostgresSubscriptions
from alertbot.store.postgres.token_mutes import PostgresTokenMutes
from alertbot.store.postgres.updates import PostgresUpdates

__all__ = ["PostgresStore"]


class PostgresStore(PostgresCatalog, PostgresState, PostgresSubscriptions, PostgresDigests,
                    PostgresDestinations,
                    PostgresOutbox, PostgresAudit, PostgresTokenMutes, PostgresUpdates,
                    PostgresPushQueue, PostgresFencing, PostgresMaintenance):
    """Store on a PostgreSQL database; any number of processes may share it."""

    async def delivery_view(self, destination: Destination,
                            now: datetime) -> DeliveryView | None:
        """A lane's reads, one after another (each a round trip to the server)."""
        info = await self.destination(destination)
        if info is None:
            return None
        return DeliveryView(info, await self.committed(destination, now),
                            await self.due_alerts(destination, now),
                            await self.token_mutes(destination, now),
                            await self.sent_times(destination, now - info.policy.window))

    @classmethod
    def from_url(cls, url: str, *, migrate: bool = True) -> PostgresStore:
        """Build from an ALERTBOT_DATABASE_URL (postgresql:// or postgres://)."""
        return cls(url, migrate=migrate)
