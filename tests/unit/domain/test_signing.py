"""HMAC signatures of webhooks (outbound and push ingest)."""

from __future__ import annotations

import pytest

from alertbot.domain.signing import SignatureError, sign, verify

BODY = b'{"symbol":"BTC"}'


def test_verify_accepts_own_signature() -> None:
    assert verify("k", sign("k", BODY, 1000), BODY, now=1100) == 1000


@pytest.mark.parametrize(("header", "now", "message"), [
    (None, 1000, "missing"),
    ("v1=abc", 1000, "t="),
    ("t=abc,v1=abc", 1000, "t="),
    ("t=1000", 1000, "v1"),
    (sign("k", BODY, 1000), 1301, "tolerance"),
    (sign("k", BODY, 1000), 699, "tolerance"),
    (sign("other", BODY, 1000), 1000, "does not match"),
    (sign("k", BODY + b" ", 1000), 1000, "does not match"),
])
def test_verify_rejects_with_reason(header: str | None, now: float, message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        verify("k", header, BODY, now=now)


def test_verify_accepts_any_matching_v1_during_rotation() -> None:
    header = sign("k", BODY, 1000) + ",v1=" + "0" * 64
    assert verify("k", header, BODY, now=1000) == 1000
