"""Log records: correlation ids in both formats, every configured secret redacted."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from alertbot.observability.logs import (
    JsonFormatter,
    RedactingFilter,
    Redactor,
    TextFormatter,
    address_secrets,
    correlation_id,
)

API_KEY = "tm-key-7d9e1f2a3b4c"
BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
HOOK = "https://hooks.example.com/services/T0001/B0002/XyZ123secretPart?sig=abcdef123456"


def _logger(formatter: logging.Formatter, redactor: Redactor) -> tuple[logging.Logger,
                                                                         io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(RedactingFilter(redactor))
    logger = logging.getLogger(f"test.logs.{id(stream)}")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


@pytest.fixture
def poll_context() -> Iterator[None]:
    token = correlation_id.set("poll-1a2b3c4d")
    yield
    correlation_id.reset(token)


def test_text_log_correlation_id_shown(poll_context: None) -> None:
    logger, stream = _logger(TextFormatter(), Redactor())
    logger.info("cycle done")
    assert "[poll-1a2b3c4d]: cycle done" in stream.getvalue()


def test_json_log_correlation_id_field(poll_context: None) -> None:
    logger, stream = _logger(JsonFormatter(), Redactor())
    logger.warning("cycle failed")
    record = json.loads(stream.getvalue())
    assert record["correlation_id"] == "poll-1a2b3c4d"
    assert record["message"] == "cycle failed"


def test_json_log_without_context_has_no_correlation_id() -> None:
    logger, stream = _logger(JsonFormatter(), Redactor())
    logger.info("hello")
    assert "correlation_id" not in json.loads(stream.getvalue())


@pytest.mark.parametrize("formatter", [TextFormatter(), JsonFormatter()],
                         ids=["text", "json"])
def test_log_configured_secrets_redacted_in_message_args_and_exception(
        formatter: logging.Formatter) -> None:
    redactor = Redactor([API_KEY, BOT_TOKEN])
    redactor.add_address(HOOK)
    logger, stream = _logger(formatter, redactor)
    logger.info("calling with %s and %r", API_KEY, {"token": BOT_TOKEN})
    try:
        raise RuntimeError(f"POST {HOOK} failed for key {API_KEY}")
    except RuntimeError:
        logger.exception("delivery crashed")
    logger.error("path only: /services/T0001/B0002/XyZ123secretPart")
    text = stream.getvalue()
    for secret in (API_KEY, BOT_TOKEN, HOOK, "XyZ123secretPart", "abcdef123456"):
        assert secret not in text
    assert "***" in text and "delivery crashed" in text and "RuntimeError" in text


def test_redactor_secret_shaped_values_redacted_without_configuration() -> None:
    redactor = Redactor()
    text = redactor("GET https://api.telegram.org/bot" + BOT_TOKEN + "/getMe and "
                    "https://discord.com/api/webhooks/123456789012345678/"
                    "abcdefghijklmnopqrstuvwxyz0123456789 x-api-key: tm-live-key")
    assert BOT_TOKEN not in text
    assert "abcdefghijklmnopqrstuvwxyz0123456789" not in text
    assert "tm-live-key" not in text


def test_redactor_update_keeps_learned_addresses() -> None:
    redactor = Redactor([API_KEY])
    redactor.add_address(HOOK)
    redactor.update(["new-key-123456"])
    assert redactor(f"{HOOK} {API_KEY} new-key-123456") == f"*** {API_KEY} ***"


@pytest.mark.parametrize(("address", "parts"), [
    ("https://user:pa55word@example.com/hook", ["pa55word"]),
    ("http://127.0.0.1:8080/hook/s3cr3t-token", ["s3cr3t-token"]),
    ("https://example.com/a/b?token=abcdef123456", ["token=abcdef123456", "abcdef123456"]),
    ("https://example.com/alerts/incoming", []),
])
def test_address_secrets_token_like_parts(address: str, parts: list[str]) -> None:
    assert address_secrets(address) == parts
