"""The Source port: where readings come from (Token Metrics API, demo replay, push ingest)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from alertbot.domain.charts import History
from alertbot.domain.models import Kind, Reading, Token


@dataclass(slots=True)
class Batch:
    """What one fetch produced. Failed parts are listed in `errors` and yield no readings."""

    readings: list[Reading] = field(default_factory=list)
    tokens: list[Token] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)
    """Source bookkeeping to persist in the same transaction as the readings."""
    calls: int = 0
    """API calls this fetch spent."""


class SourceError(Exception):
    """A fetch failed as a whole (bad key, quota spent, unreachable); nothing is stored."""

    def __init__(self, message: str, *, retry_after: float | None = None,
                 auth: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.auth = auth


class Source(Protocol):
    """Readings for tokens.

    `fetch` never raises for a partial failure: failed endpoints are reported in
    `Batch.errors` and simply yield no readings, so stored state is never erased. It raises
    SourceError only when the whole fetch failed. Calling it again is always safe.
    """

    name: str

    async def universe(self) -> list[Token]:
        """Tokens that an `all` subscription covers."""
        ...

    async def resolve(self, symbol: str) -> list[Token]:
        """Tokens whose symbol is exactly `symbol` (symbols are not unique)."""
        ...

    async def fetch(self, token_ids: Sequence[int], kinds: Collection[Kind],
                    now: datetime) -> Batch:
        """Current readings of the given tokens and kinds."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class HistorySource(Protocol):
    """Daily grade history of one token, for charts.

    `history` covers the `days` before `end` (a wall-clock time) in the source's own timeline
    (the demo replays its data set faster than the wall clock), and never anything after it.
    It raises SourceError when the history cannot be read; calling it again is safe. Each
    call may cost API calls: callers cache.
    """

    async def history(self, token: Token, days: int, end: datetime) -> History:
        """TM grade, fundamental grade (with component scores) and daily-signal flips."""
        ...
