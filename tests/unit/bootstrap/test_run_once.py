"""`run --once` as a leader: its epoch stays valid for a cycle longer than the lease."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from alertbot.bootstrap import run
from tests.unit.bootstrap.test_roles import ScriptedLeadership


class RenewingLeadership(ScriptedLeadership):
    """Counts the moments its lease is being renewed (`hold` runs)."""

    def __init__(self, log: list[str]) -> None:
        super().__init__(log)
        self.holding = False

    async def hold(self, stop: asyncio.Event) -> None:
        self.holding = True
        try:
            await super().hold(stop)
        finally:
            self.holding = False


class SlowDispatcher:
    """A backlog paced by flood limits: the cycle lasts a while; notes the lease's renewal."""

    def __init__(self, leadership: RenewingLeadership) -> None:
        self.leadership = leadership
        self.renewed_while_sending: bool | None = None

    def lead(self, epoch: int, *, valid: object) -> None:
        pass

    async def run_until_idle(self) -> None:
        await asyncio.sleep(0.05)
        self.renewed_while_sending = self.leadership.holding


async def test_run_once_renews_its_lease_while_the_cycle_runs_then_releases(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def prepare(app: object, *, once: bool = False) -> None:
        pass

    async def poll_once() -> None:
        pass

    class NoDigests:
        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

        async def check(self) -> None:
            pass

    monkeypatch.setattr(run, "prepare", prepare)
    monkeypatch.setattr(run, "DigestScheduler", NoDigests)
    log: list[str] = []
    leadership = RenewingLeadership(log)
    leadership.grant(3)
    dispatcher = SlowDispatcher(leadership)
    led: list[int] = []
    app = SimpleNamespace(leadership=leadership, dispatcher=dispatcher,
                          poller=SimpleNamespace(poll_once=poll_once, drain_pushed=poll_once,
                                                 lead=led.append),
                          store=None, clock=None,
                          rules=SimpleNamespace(band_label=None))
    await asyncio.wait_for(run._once_as_leader(app), 10)  # type: ignore[arg-type]
    assert dispatcher.renewed_while_sending is True
    assert log == ["acquired 3", "released 3"] and not leadership.holding
    assert led == [3], "the poll commits as the leader of the epoch"
