"""Database URLs: which backend a URL names, and its password kept out of sight."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit, urlunsplit


def is_postgres(url: str) -> bool:
    """Whether a database URL names PostgreSQL (postgresql:// or postgres://)."""
    return url.startswith(("postgresql://", "postgres://"))


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
