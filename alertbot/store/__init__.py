"""Store implementations: SQLite (embedded, the default) and PostgreSQL (several replicas).

`store_from_url` picks one from ALERTBOT_DATABASE_URL; the composition root calls it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit, urlunsplit

from alertbot.ports.store import StoreError

if TYPE_CHECKING:
    from alertbot.ports.store import Store


def is_postgres(url: str) -> bool:
    """Whether a database URL names PostgreSQL (postgresql:// or postgres://)."""
    return url.startswith(("postgresql://", "postgres://"))


def store_from_url(url: str, *, migrate: bool = True) -> Store:
    """A (not yet open) store for a database URL; `migrate` False refuses an old schema."""
    # Imported here: each backend imports this package (for `migrate`) as it loads.
    if url.startswith("sqlite:///"):
        from alertbot.store.sqlite import SqliteStore

        return SqliteStore.from_url(url, migrate=migrate)
    if is_postgres(url):
        from alertbot.store.postgres import PostgresStore

        return PostgresStore.from_url(url, migrate=migrate)
    raise StoreError(f"unsupported database URL {url.split(':', 1)[0]}://… (expected "
                     "sqlite:///PATH or postgresql://USER@HOST/DATABASE)")


def redact_url(url: str) -> str:
    """The URL with its password (if any) replaced by `***`: safe for logs and errors."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url.split(":", 1)[0] + "://…"
    if password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def url_password(url: str) -> str | None:
    """The password a database URL carries (for log redaction), or None."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None
