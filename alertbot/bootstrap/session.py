"""The process's one aiohttp client session, created on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import aiohttp


class SharedSession:
    """Outbound webhooks, Token Metrics and Discord webhooks share it; call it to get it.

    Created (and aiohttp imported) on the first call: a bot whose only outlet is Telegram
    (python-telegram-bot speaks httpx), running the demo without the HTTP server, never loads
    aiohttp, about 7 MB of memory.
    """

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def __call__(self) -> aiohttp.ClientSession:
        if self._session is None:
            import aiohttp

            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        """Close the session if it was ever created."""
        if self._session is not None:
            await self._session.close()
