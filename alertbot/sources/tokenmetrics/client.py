"""HTTP client of the Token Metrics data API over a shared aiohttp session.

Sends `x-api-key`, applies an explicit timeout to every request, checks the envelope
(`success`, `message`, `data`), pages with `limit`/`page` from 1 until a short page, and
retries what is worth retrying: 429 (honouring Retry-After, else exponential backoff with
full jitter), 5xx, timeouts, broken connections and unreadable bodies, a bounded number of
times. `success: false` is an error carrying the API's message, never an empty result.
Error messages name TOKENMETRICS_API_KEY but never contain its value.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from pydantic import SecretStr

from alertbot import __version__
from alertbot.domain.retry_after import parse_retry_after

log = logging.getLogger(__name__)

PAGE_LIMIT = 100
"""The API's maximum page size."""
DEFAULT_TIMEOUT = 20.0
KEY_VARIABLE = "TOKENMETRICS_API_KEY"
_MESSAGE_LIMIT = 200

Sleep = Callable[[float], Awaitable[None]]


class ApiError(Exception):
    """A request failed; `message` is safe to log and show."""


class AuthFailed(ApiError):
    """The API refused the key (401, or 403 when `forbidden`)."""

    def __init__(self, message: str, *, forbidden: bool = False) -> None:
        super().__init__(message)
        self.forbidden = forbidden


class RateLimited(ApiError):
    """Still rate limited after the allowed retries; `retry_after` is the advised wait."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class EndpointFailed(ApiError):
    """An endpoint could not answer (server error, timeout, bad body, success:false)."""


@dataclass(frozen=True, slots=True)
class ApiRetry:
    """How often and how long to retry a request."""

    attempts: int = 3
    """Attempts per request, the first included."""
    base: float = 1.0
    """Backoff of the first retry, in seconds; doubles with each one."""
    cap: float = 30.0
    """Longest backoff."""
    max_wait: float = 30.0
    """Longest Retry-After waited for inside a fetch; longer ones end the cycle instead."""

    def backoff(self, retry: int, rng: random.Random) -> float:
        """Full jitter: uniform between 0 and the exponential ceiling of this retry (0-based)."""
        ceiling = min(self.cap, self.base * 2 ** retry)
        return rng.uniform(0.0, ceiling)


@dataclass(slots=True)
class Meter:
    """Counts the requests one operation sent (each one costs a call of the quota)."""

    calls: int = 0


class TokenMetricsApi:
    """Requests to one Token Metrics base URL with one key."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, api_key: SecretStr, *,
                 timeout: float = DEFAULT_TIMEOUT, retry: ApiRetry | None = None,
                 sleep: Sleep = asyncio.sleep, rng: random.Random | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._session = session
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, 10.0))
        self.retry = retry or ApiRetry()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._now = now
        self.on_call: Callable[[str, str], None] = lambda endpoint, status: None
        """Told about every request: endpoint and HTTP status, `timeout` or `error` (metrics)."""

    def __repr__(self) -> str:
        return f"TokenMetricsApi({self.base_url!r})"

    def rotate_key(self, api_key: SecretStr) -> None:
        """Send a new key from the next request on (key rotation without restart)."""
        self._key = api_key

    def _clean(self, text: str) -> str:
        # API messages are untrusted text: keep them short, on one line, and without the key.
        key = self._key.get_secret_value()
        flat = " ".join(str(text).split())
        if key:
            flat = flat.replace(key, "***")
        return flat[:_MESSAGE_LIMIT]

    async def get(self, endpoint: str, params: Mapping[str, str], *, meter: Meter,
                  attempts: int | None = None) -> list[Any]:
        """One page of `data`; retries transient failures. Raises ApiError subclasses."""
        tries = max(1, attempts if attempts is not None else self.retry.attempts)
        url = self.base_url + endpoint
        headers = {
            "x-api-key": self._key.get_secret_value(),
            "accept": "application/json",
            "user-agent": f"alertbot/{__version__}",
        }
        last = ""
        for attempt in range(tries):
            final = attempt == tries - 1
            meter.calls += 1
            try:
                async with self._session.get(url, params=dict(params), headers=headers,
                                             timeout=self._timeout) as resp:
                    status = resp.status
                    retry_after = resp.headers.get("Retry-After")
                    body = await resp.read()
            except TimeoutError:
                self.on_call(endpoint, "timeout")
                last = f"Token Metrics {endpoint} timed out after {self._timeout.total:g}s"
            except aiohttp.ClientError as exc:
                self.on_call(endpoint, "error")
                last = f"Token Metrics {endpoint} unreachable: {type(exc).__name__}"
            else:
                self.on_call(endpoint, str(status))
                outcome = self._interpret(endpoint, status, body)
                if isinstance(outcome, list):
                    return outcome
                if status == 429:
                    wait = parse_retry_after(retry_after, self._now())
                    if wait is None:
                        wait = self.retry.backoff(attempt, self._rng)
                    if final or wait > self.retry.max_wait:
                        raise RateLimited(f"{outcome}; retry in {wait:.0f}s", max(wait, 1.0))
                    log.info("%s; retrying in %.1fs", outcome, wait)
                    await self._sleep(wait)
                    continue
                last = outcome
            if final:
                break
            wait = self.retry.backoff(attempt, self._rng)
            log.info("%s; retrying in %.1fs", last, wait)
            await self._sleep(wait)
        suffix = f" (after {tries} attempts)" if tries > 1 else ""
        raise EndpointFailed(last + suffix)

    def _interpret(self, endpoint: str, status: int, body: bytes) -> list[Any] | str:
        """Rows of a good answer; a retryable problem as text; raises for the rest."""
        payload: Any = None
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        message = ""
        if isinstance(payload, Mapping):
            message = self._clean(str(payload.get("message") or ""))
        detail = f"HTTP {status}" + (f": {message}" if message else "")
        if status == 401:
            raise AuthFailed(f"Token Metrics rejected {KEY_VARIABLE} ({detail}); set a valid "
                             f"key in {KEY_VARIABLE} or {KEY_VARIABLE}_FILE")
        if status == 403:
            raise AuthFailed(f"Token Metrics refused {endpoint} for {KEY_VARIABLE} ({detail}); "
                             "check that the key's plan includes it", forbidden=True)
        if status == 429:
            return f"Token Metrics rate limited {endpoint} ({detail})"
        if status >= 500:
            return f"Token Metrics {endpoint} failed ({detail})"
        if status != 200:
            raise EndpointFailed(f"Token Metrics {endpoint} failed ({detail})")
        if not isinstance(payload, Mapping):
            kind = "truncated or malformed JSON" if body.strip() else "an empty body"
            return f"Token Metrics {endpoint} returned {kind}"
        if payload.get("success") is not True:
            raise EndpointFailed(f"Token Metrics {endpoint} answered success=false: "
                                 f"{message or 'no message'}")
        data = payload.get("data")
        if not isinstance(data, list):
            return f"Token Metrics {endpoint} returned no data list"
        return data

    async def pages(self, endpoint: str, params: Mapping[str, str], *, meter: Meter,
                    max_pages: int, attempts: int | None = None,
                    done: Callable[[Sequence[Any]], bool] = lambda rows: False) -> list[Any]:
        """Rows of pages 1, 2, … until a short page, `done(rows)`, or `max_pages`."""
        rows: list[Any] = []
        for page in range(1, max_pages + 1):
            query = {**params, "limit": str(PAGE_LIMIT), "page": str(page)}
            data = await self.get(endpoint, query, meter=meter, attempts=attempts)
            rows.extend(data)
            if len(data) < PAGE_LIMIT or done(rows):
                return rows
        if max_pages > 1:
            log.warning("Token Metrics %s: stopped after %d pages of %d rows", endpoint,
                        max_pages, PAGE_LIMIT)
        return rows
