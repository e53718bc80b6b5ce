"""Logging: text or JSON to stderr, with every configured secret redacted from every record."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

REDACTED = "***"
_MIN_SECRET = 4
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
        self._configured: set[str] = set()
        self._learned: set[str] = set()
        self._secrets: list[str] = []
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        """Replace the set of configured secrets; learned addresses stay."""
        self._configured = {s for s in secrets if s and len(s) >= _MIN_SECRET}
        self._rebuild()

    def add(self, secret: str) -> None:
        """Also redact this value (e.g. a rotated key, or a URL loaded from the store)."""
        if secret and len(secret) >= _MIN_SECRET and secret not in self._learned:
            self._learned.add(secret)
            self._rebuild()

    def add_address(self, address: str) -> None:
        """Redact a secret delivery address and the token-like parts inside it."""
        self.add(address)
        for part in address_secrets(address):
            self.add(part)

    def _rebuild(self) -> None:
        # Longest first so a secret containing another is removed whole; one assignment, so
        # a record formatted meanwhile sees the old list or the new one, never half of it.
        self._secrets = sorted(self._configured | self._learned, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        text = _PATTERNS[0].sub(REDACTED, text)
        text = _PATTERNS[1].sub(lambda m: f"{m.group(1)}/{REDACTED}", text)
        return _PATTERNS[2].sub(lambda m: f"{m.group(1)}{REDACTED}", text)


def address_secrets(address: str) -> list[str]:
    """Parts of a URL that may be credentials: password, token-like path segments, query."""
    try:
        parts = urlsplit(address)
    except ValueError:
        return []
    found = [parts.password or ""]
    for segment in parts.path.split("/"):
        if len(segment) >= 16 or (len(segment) >= 8 and any(c.isdigit() for c in segment)):
            found.append(segment)
    if parts.query:
        found.append(parts.query)
        found.extend(value for _, value in parse_qsl(parts.query) if len(value) >= 8)
    return [f for f in found if len(f) >= _MIN_SECRET]


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
    # An exception escaping everything would otherwise print an unredacted traceback.
    sys.excepthook = _log_unhandled
    # Library chatter at INFO would drown the bot's own lines.
    for noisy in ("httpx", "telegram", "discord", "aiohttp.access", "apscheduler"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    # The SQLite driver logs every statement with its parameters at DEBUG, webhook URLs
    # (secrets) included; its warnings and errors still come through.
    logging.getLogger("aiosqlite").setLevel(logging.WARNING)


def _log_unhandled(kind: type[BaseException], value: BaseException,
                   tb: TracebackType | None) -> None:
    logging.getLogger("alertbot").critical("unhandled error", exc_info=(kind, value, tb))
