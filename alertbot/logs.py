"""Logging: text or JSON to stderr, with every configured secret redacted from every record."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

REDACTED = "***"
correlation_id: ContextVar[str] = ContextVar("correlation_id", default="")

# Secrets that can appear without being configured: bot tokens inside Telegram API URLs,
# Discord webhook tokens, x-api-key headers echoed in exceptions.
_PATTERNS = (
    re.compile(r"(?<=/bot)\d{3,20}:[A-Za-z0-9_-]{20,}"),
    re.compile(r"(?<=/webhooks/)(\d{15,22})/[A-Za-z0-9._-]{20,}"),
    re.compile(r"(?i)(x-api-key['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+"),
)


class Redactor:
    """Replaces known secret values and secret-shaped substrings."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        """Replace the set of known secrets (after a key rotation)."""
        # Longest first so a secret containing another is removed whole.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def add(self, secret: str) -> None:
        """Also redact this value (e.g. a webhook URL loaded from the store)."""
        if secret and len(secret) >= 4 and secret not in self._secrets:
            self._secrets = sorted([*self._secrets, secret], key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        text = _PATTERNS[0].sub(REDACTED, text)
        text = _PATTERNS[1].sub(lambda m: f"{m.group(1)}/{REDACTED}", text)
        return _PATTERNS[2].sub(lambda m: f"{m.group(1)}{REDACTED}", text)


class RedactingFilter(logging.Filter):
    """Renders each record once and redacts the result, exception text included."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info:
            formatter = logging.Formatter()
            record.exc_text = self.redactor(formatter.formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = self.redactor(record.stack_info)
        if record.exc_text:
            record.exc_text = self.redactor(record.exc_text)
        record.msg = self.redactor(message)
        record.args = None
        record.correlation_id = correlation_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        cid = getattr(record, "correlation_id", "")
        if cid:
            payload["correlation_id"] = cid
        if record.exc_text:
            payload["exception"] = record.exc_text
        return json.dumps(payload, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Readable single-line records."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(cid)s: %(message)s",
                         "%Y-%m-%d %H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        cid = getattr(record, "correlation_id", "")
        record.cid = f" [{cid}]" if cid else ""
        return super().format(record)


def setup_logging(level: str, fmt: str, redactor: Redactor) -> None:
    """Configure the root logger once (idempotent)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactingFilter(redactor))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Library chatter at INFO would drown the bot's own lines.
    for noisy in ("httpx", "telegram", "discord", "aiohttp.access", "apscheduler"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
