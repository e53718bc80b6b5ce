"""The running bot as the composition root wired it (see build.py)."""

from __future__ import annotations

import logging
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from alertbot.bootstrap.parts import Installed
from alertbot.bootstrap.roles import RoleSwitch
from alertbot.bootstrap.session import SharedSession
from alertbot.bootstrap.sources import SourceParts
from alertbot.config import Settings
from alertbot.domain.detect import Rules
from alertbot.observability.logs import Redactor
from alertbot.observability.metrics import Metrics
from alertbot.ports.clock import Clock
from alertbot.ports.leadership import Leadership, Role
from alertbot.ports.lifecycle import Check, Closer, Job, Probe
from alertbot.ports.notifier import Notifier
from alertbot.ports.observers import Observers
from alertbot.ports.source import Source
from alertbot.ports.store import Store
from alertbot.services.charts import ChartService
from alertbot.services.commands import CommandCore
from alertbot.services.dispatcher import Dispatcher
from alertbot.services.lookup import Lookup
from alertbot.services.poller import Poller

if TYPE_CHECKING:  # aiohttp.web and the HTTP server load only when the server is on
    from alertbot.http.telegram_hook import UpdateSink

log = logging.getLogger(__name__)


@dataclass
class App:
    """Everything the main job runs, wired once by build()."""

    settings: Settings
    """The configuration in force; a SIGHUP reload replaces it."""
    clock: Clock
    store: Store
    source_parts: SourceParts
    rules: Rules
    poller: Poller
    dispatcher: Dispatcher
    lookup: Lookup
    commands: CommandCore
    redactor: Redactor
    session: SharedSession
    """The shared HTTP session (webhooks, Token Metrics, Discord webhooks), made on first use."""
    metrics: Metrics
    observers: Observers
    """What the poller and dispatcher report to (metrics, operator alerts)."""
    notifiers: dict[str, Notifier] = field(default_factory=dict)
    jobs: dict[str, Job] = field(default_factory=dict)
    """Background jobs by name, run by `alertbot run` beside the poller and dispatcher."""
    checks: dict[str, Check] = field(default_factory=dict)
    """`alertbot check` probes by name."""
    health: dict[str, Probe] = field(default_factory=dict)
    """Readiness probes by name (/readyz)."""
    closers: list[Closer] = field(default_factory=list)
    receivers: dict[str, UpdateSink] = field(default_factory=dict)
    """Handlers of webhook-delivered chat updates by platform (Telegram webhook mode)."""
    env_file: Path | None = Path(".env")
    """Re-read on SIGHUP."""
    charts: ChartService | None = None
    """Grade-history charts (None: the source has no history)."""
    leadership: Leadership | None = None
    """Who of the replicas on this database leads (set by build())."""
    role_switch: RoleSwitch | None = None
    """Set while `alertbot run` runs: starts and stops the leader-only jobs."""
    leader_probes: set[str] = field(default_factory=set)
    """Readiness probes that only apply while leading (a standby's /readyz skips them)."""

    def role(self) -> Role | None:
        """Leader or standby while `alertbot run` runs; None otherwise."""
        return self.role_switch.role if self.role_switch is not None else None

    @property
    def source(self) -> Source:
        """The polled source."""
        return self.source_parts.source

    def install(self, installed: Installed) -> None:
        """Take what an installer returned."""
        target = Installed(self.notifiers, self.jobs, self.checks, self.health, self.closers,
                           self.receivers)
        target.add(installed)

    async def close(self) -> None:
        """Release every resource (idempotent, in reverse order of creation)."""
        for closer in reversed(self.closers):
            with suppress(Exception):
                await closer()
        self.closers.clear()
