"""Validation and redaction of secret delivery addresses (webhook URLs)."""

from __future__ import annotations

import hashlib
import ipaddress
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
ADDRESS_ID_PREFIX = "wh-"
"""Chat ids made from a secret address start with this."""


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine (localhost or a loopback address)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_webhook_address(url: str) -> str:
    """An HTTPS URL (plain http only for loopback); raises ValueError without echoing it."""
    text = url.strip()
    if len(text) > MAX_URL_LENGTH:
        raise ValueError("the URL is too long")
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("expected an https:// URL")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValueError("plain http:// is accepted only for loopback addresses; use https://")
    if parts.username or parts.password:
        raise ValueError("credentials in the URL are not supported; put a token in the path")
    return text


def address_id(url: str) -> str:
    """Stable, non-secret id of an address, e.g. for logs: wh-1a2b3c4d5e6f."""
    return ADDRESS_ID_PREFIX + hashlib.sha256(url.encode()).hexdigest()[:12]
