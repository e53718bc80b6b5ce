"""A local HTTP endpoint that records alertbot's outbound webhook deliveries."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Received:
    """One request as it arrived."""

    at: float
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    @property
    def key(self) -> str:
        """The Idempotency-Key header."""
        return self.headers.get("Idempotency-Key", "")


@dataclass
class WebhookReceiver:
    """Records POSTs; `responses` scripts statuses (status, headers) for the next requests."""

    delay: float = 0.0
    clock: Callable[[], float] = time.monotonic
    received: list[Received] = field(default_factory=list)
    responses: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _event: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""

    async def __aenter__(self) -> WebhookReceiver:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hook/s3cr3t-token"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append(Received(self.clock(), request.path, dict(request.headers), body))
        self._event.set()
        if self.delay:
            await asyncio.sleep(self.delay)
        status, headers = self.responses.pop(0) if self.responses else (200, {})
        return web.Response(status=status, headers=headers, text="ok" if status < 300 else "no")

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Wait until at least `count` requests arrived."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.received) < count:
            self._event.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"{len(self.received)} of {count} requests arrived")
            try:
                await asyncio.wait_for(self._event.wait(), remaining)
            except TimeoutError:
                continue
        return self.received

    def change_ids(self) -> list[str]:
        """Every change id delivered, in arrival order (digests contribute each of theirs)."""
        return [a["change_id"] for r in self.received for a in r.json["alerts"]]
