"""HMAC-SHA256 request signatures: `X-Alertbot-Signature: t=<unix>,v1=<hex>` over "<t>.<body>"."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Alertbot-Signature"
DEFAULT_TOLERANCE = 300.0
"""Seconds a signature stays valid (both directions, for clock skew)."""


class SignatureError(Exception):
    """Why a signature was rejected (safe to show: it never contains the secret)."""


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """Header value for a body signed at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str | None, body: bytes, now: float,
           tolerance: float = DEFAULT_TOLERANCE) -> int:
    """Check a signature header; returns its timestamp or raises SignatureError."""
    if not header:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if sep:
            fields.setdefault(key, []).append(value)
    try:
        timestamp = int(fields["t"][0])
    except (KeyError, ValueError):
        raise SignatureError("signature header has no valid t=<unix seconds>") from None
    candidates = fields.get("v1", [])
    if not candidates:
        raise SignatureError("signature header has no v1=<hex digest>")
    if abs(now - timestamp) > tolerance:
        raise SignatureError("signature timestamp is outside the allowed tolerance")
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    # compare_digest on every candidate: the time taken does not depend on where they differ.
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise SignatureError("signature does not match")
    return timestamp


def derive_secret(key: str, purpose: str) -> str:
    """A secret derived from `key` for one `purpose` (64 hex digits; reveals nothing of `key`).

    Every process holding the same key derives the same value, so replicas agree on it
    without sharing one more secret.
    """
    return hmac.new(key.encode(), f"alertbot:{purpose}".encode(), hashlib.sha256).hexdigest()
