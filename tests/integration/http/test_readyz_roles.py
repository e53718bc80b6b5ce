"""/readyz and push ingest by role: a standby is ready (200 `standby`), a leader-only check
(`?role=leader`) refuses it, and it queues signed pushes for the leader to detect on."""

from __future__ import annotations

from dataclasses import dataclass

from alertbot.bootstrap.roles import LEADER_PROBES
from alertbot.bootstrap.run import JOB_PROBE_PREFIX
from alertbot.http.server import ROLE_HEADER
from alertbot.ports.leadership import Role
from tests.integration.http.test_server import Served, demo, reading, stored

__all__ = ["demo"]


@dataclass
class FixedRole:
    """Stands in for the role switch: only its role is read."""

    role: Role


def as_role(served: Served, role: Role) -> None:
    app = served.app
    app.role_switch = FixedRole(role)  # type: ignore[assignment]
    app.leader_probes.update(LEADER_PROBES)
    app.leader_probes.update(f"{JOB_PROBE_PREFIX}{name}" for name in ("poller", "dispatcher"))


async def readyz(served: Served, query: str = "") -> tuple[int, str, str]:
    async with served.http.get(served.url + "/readyz" + query) as resp:
        return resp.status, await resp.text(), resp.headers.get(ROLE_HEADER, "")


async def test_readyz_standby_ready_without_polls_and_says_standby(demo: Served) -> None:
    as_role(demo, Role.STANDBY)
    demo.app.health["telegram"] = lambda: "Telegram: not connected"
    demo.app.health["job poller"] = lambda: "down since 12:00:00 UTC (1 restart)"
    status, body, role = await readyz(demo)
    assert (status, role) == (200, "standby")
    assert body.startswith("standby\n") and "database: ok" in body
    assert "polls" not in body and "telegram" not in body and "job poller" not in body


async def test_readyz_standby_leader_query_unavailable(demo: Served) -> None:
    as_role(demo, Role.STANDBY)
    status, body, role = await readyz(demo, "?role=leader")
    assert (status, role) == (503, "standby") and body.startswith("standby\n")


async def test_readyz_standby_failing_own_check_not_ready(demo: Served) -> None:
    as_role(demo, Role.STANDBY)
    demo.app.health["job http"] = lambda: "down since 12:00:00 UTC (2 restarts): OSError"
    status, body, _ = await readyz(demo)
    assert status == 503 and body.startswith("not ready (standby)\n")
    assert "job http: FAILED: down since" in body


async def test_readyz_leader_checks_everything_and_says_leader(demo: Served) -> None:
    as_role(demo, Role.LEADER)
    status, body, role = await readyz(demo, "?role=leader")
    assert (status, role) == (503, "leader") and "polls: FAILED" in body
    await demo.app.poller.poll_once()
    status, body, role = await readyz(demo, "?role=leader")
    assert (status, role) == (200, "leader") and body.startswith("ready\n")


async def test_ingest_on_standby_queues_readings_for_the_leader_202(demo: Served) -> None:
    as_role(demo, Role.STANDBY)
    status, answer = await demo.push([reading()])
    assert (status, answer) == (202, {"accepted": 1, "queued": True})
    # Stored for the leader, not detected here.
    assert (await stored(demo.app))["readings"] == 0
    [batch] = await demo.app.store.pending_pushed(10)
    assert [r.token.symbol for r in batch.readings] == ["BTC"]


async def test_ingest_on_standby_detected_once_by_the_leader(demo: Served) -> None:
    as_role(demo, Role.STANDBY)
    assert (await demo.push([reading()]))[0] == 202
    as_role(demo, Role.LEADER)
    assert await demo.app.poller.drain_pushed() == 1
    assert await demo.app.poller.drain_pushed() == 0
    assert (await stored(demo.app))["readings"] == 1
    assert await demo.app.store.pending_pushed(10) == []


async def test_ingest_on_leader_detects_at_once_and_answers_counts(demo: Served) -> None:
    as_role(demo, Role.LEADER)
    status, answer = await demo.push([reading()])
    assert (status, answer["accepted"], answer["outcomes"]) == (200, 1, {"baseline": 1})
    assert (await stored(demo.app))["readings"] == 1
    assert await demo.app.store.pending_pushed(10) == []


async def test_metrics_leadership_gauges_and_changes(demo: Served) -> None:
    before = await demo.metrics()
    assert before["alertbot_leader{}"] == 0 and before["alertbot_leader_epoch{}"] == 0
    assert before["alertbot_leadership_changes_total{}"] == 0
    demo.app.metrics.leadership(True, 3)
    after = await demo.metrics()
    assert after["alertbot_leader{}"] == 1 and after["alertbot_leader_epoch{}"] == 3
    demo.app.metrics.leadership(False, None)
    demo.app.metrics.leadership(False, None)
    last = await demo.metrics()
    assert last["alertbot_leader{}"] == 0 and last["alertbot_leader_epoch{}"] == 0
    assert last["alertbot_leadership_changes_total{}"] == 2
