"""Console notifier: readable alerts on standard output (the embedded default)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TextIO

from alertbot.domain.models import Destination, Message
from alertbot.domain.render import ARROW
from alertbot.ports.notifier import Delivered, Limit, Target

DEFAULT_CHAT = "default"


def format_message(message: Message, destination: Destination, key: str, now: datetime) -> str:
    """Lines printed for one message."""
    stamp = now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    where = "" if destination.chat_id == DEFAULT_CHAT else f"[{destination}] "
    arrow = ARROW[message.direction] + " " if message.direction else "• "
    if message.is_digest or message.scheduled:
        body = [f"{stamp} {where}{arrow}{message.title}{':' if message.is_digest else ''}"]
        body += [f"    {line}" if line else "" for line in message.lines]
        body[0] += f"  [{key}]"
        return "\n".join(body)
    details = " · ".join((*message.lines, message.link))
    return f"{stamp} {where}{arrow}{message.title} · {details}  [{key}]"


class ConsoleNotifier:
    """Prints each message to a stream; never fails."""

    platform = "console"

    def __init__(self, stream: TextIO | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._stream = stream
        self._clock = clock

    def limits(self, destination: Destination) -> Sequence[tuple[Limit, str]]:
        """The console has no rate limits."""
        return ()

    async def send(self, target: Target, message: Message, *, key: str,
                   silent: bool) -> Delivered:
        """Print the message."""
        stream = self._stream or sys.stdout
        print(format_message(message, target.destination, key, self._clock()), file=stream,
              flush=True)
        return Delivered(message_id=key)

    async def start(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to release."""
