"""Schema migrations for every backend: which versions exist, which are pending, and refusals.

Each backend keeps its SQL under its own folder (`alertbot/store/migrations` for SQLite,
`alertbot/store/postgres/migrations` for PostgreSQL) as `NNNN_name.sql`, and records applied
versions in a `schema_migrations` table. The backends apply the files with their own driver;
what to apply, and when to refuse, is decided here for both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from alertbot.ports.store import StoreError

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
MIGRATE_COMMAND = "alertbot db migrate"


@dataclass(frozen=True, slots=True)
class Migration:
    """One bundled migration file."""

    version: int
    name: str
    sql: str


def available(package: str) -> list[Migration]:
    """Every `NNNN_name.sql` in a package's `migrations` folder, by version."""
    folder = resources.files(package).joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name,
                                   entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


def latest(migrations: list[Migration]) -> int:
    """The version the code expects."""
    return migrations[-1].version if migrations else 0


def pending(current: int, migrations: list[Migration], *, apply: bool) -> list[Migration]:
    """Migrations to apply on a database at `current`; refuses what cannot be used.

    A database newer than the code is always refused. With `apply` False (migrating on start
    is turned off), a database that is behind is refused too, naming the command that
    migrates it.
    """
    newest = latest(migrations)
    if current > newest:
        raise StoreError(
            f"database schema version {current} is newer than this alertbot supports "
            f"({newest}); upgrade alertbot or point ALERTBOT_DATABASE_URL elsewhere"
        )
    todo = [m for m in migrations if m.version > current]
    if todo and not apply:
        raise StoreError(
            f"database schema version {current} is older than this alertbot needs "
            f"({newest}) and ALERTBOT_MIGRATE=off: run `{MIGRATE_COMMAND}` first"
        )
    return todo
