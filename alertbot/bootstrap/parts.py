"""What an installer adds to the running bot, returned to the composition root."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from alertbot.ports.lifecycle import Check, Closer, Job, Probe
from alertbot.ports.notifier import Notifier

if TYPE_CHECKING:  # aiohttp.web and the HTTP server load only when the server is on
    from alertbot.http.telegram_hook import UpdateSink

T = TypeVar("T")


@dataclass
class Installed:
    """Notifiers, jobs, probes and closers one installer contributes."""

    notifiers: dict[str, Notifier] = field(default_factory=dict)
    jobs: dict[str, Job] = field(default_factory=dict)
    checks: dict[str, Check] = field(default_factory=dict)
    health: dict[str, Probe] = field(default_factory=dict)
    closers: list[Closer] = field(default_factory=list)
    receivers: dict[str, UpdateSink] = field(default_factory=dict)
    """Platform name -> what handles the updates its webhook delivers to the HTTP server."""

    def add(self, other: Installed) -> None:
        """Take everything `other` contributes (names must not clash)."""
        _merge(self.notifiers, other.notifiers)
        _merge(self.jobs, other.jobs)
        _merge(self.checks, other.checks)
        _merge(self.health, other.health)
        _merge(self.receivers, other.receivers)
        self.closers.extend(other.closers)


def _merge(mine: dict[str, T], theirs: dict[str, T]) -> None:
    clash = mine.keys() & theirs.keys()
    if clash:
        raise ValueError(f"installed twice: {', '.join(sorted(clash))}")
    mine.update(theirs)
