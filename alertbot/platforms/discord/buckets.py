"""discord.py's create-message buckets, made to stand aside for the dispatcher's pacer.

discord.py reads `X-RateLimit-Remaining: 0` as "sleep `Reset-After`, then the whole limit is
back", and sleeps inside the send that saw it. Discord (and the fake) report `Reset-After` as
the time until the window is empty, so a channel paced at its real sliding-window rate waits
that long on top of the pacer: about 9 s per 5 messages at 5 per 5 s. The pacer already keeps
every window under its limit (DESIGN §3), so on the one route it paces, the bucket ignores
the headers and only serialises sends per channel. A 429 is untouched: `HTTPClient.request`
still sleeps its `retry_after` (or raises `RateLimited` past `max_ratelimit_timeout`), and a
global 429 still holds every request.
"""

from __future__ import annotations

from typing import Any

import discord.http

CREATE_MESSAGE = "POST /channels/{channel_id}/messages"
"""`Route.key` of Create Message, the only route the pacer governs."""


class PacedBucket(discord.http.Ratelimit):
    """A discord.py bucket that takes no advice from rate-limit headers."""

    __slots__ = ()

    def update(self, response: Any, *, use_clock: bool = False) -> None:
        """Ignore the headers: the pacer decides when the next send may go."""


def _paced(http: discord.http.HTTPClient, key: str) -> bool:
    if key.startswith(CREATE_MESSAGE + ":"):
        return True
    learnt = http._bucket_hashes.get(CREATE_MESSAGE)
    return learnt is not None and key.startswith(learnt + ":")


def pace_create_message(http: discord.http.HTTPClient) -> None:
    """Give Create Message requests on this client paced buckets (idempotent)."""
    if getattr(http, "_alertbot_paced", False):
        return
    stock = http.get_ratelimit

    def get_ratelimit(key: str) -> discord.http.Ratelimit:
        bucket = http._buckets.get(key)
        if bucket is None and _paced(http, key):
            bucket = http._buckets[key] = PacedBucket(http.max_ratelimit_timeout)
        return bucket if bucket is not None else stock(key)

    # An instance attribute, not a subclass: discord.Client builds its HTTPClient itself.
    setattr(http, "get_ratelimit", get_ratelimit)  # noqa: B010
    setattr(http, "_alertbot_paced", True)  # noqa: B010
