"""One real `alertbot run` on SQLite as a replica: it leads, says so on /readyz and in its
metrics, `alertbot status` names its pid, and a clean stop leaves it standing by."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from tests.e2e.process import clean_env, run_alertbot
from tests.e2e.replicas import Replicas


async def test_replica_sqlite_leads_reports_role_and_status_names_its_pid(
        tmp_path: Path) -> None:
    env = clean_env(tmp_path, ALERTBOT_DEMO="1")
    replicas = await Replicas(env, tmp_path).start(1)
    try:
        async with aiohttp.ClientSession() as http:
            leader = await replicas.leader(http)
            async with http.get(f"http://127.0.0.1:{leader.port}/metrics") as resp:
                metrics = await resp.text()
            assert "\nalertbot_leader 1.0\n" in metrics
            assert "\nalertbot_leader_epoch 1.0\n" in metrics
            assert "\nalertbot_leadership_changes_total 1.0\n" in metrics
        code, out, err = await run_alertbot(["status"], env, tmp_path)
        assert code == 0, err
        assert f" pid {leader.pid} (epoch 1) since " in out.splitlines()[0]
    finally:
        assert await replicas.stop() == [0]
    code, out, _ = await run_alertbot(["status"], env, tmp_path)
    assert code == 1 and f" pid {leader.pid}: standby" in out
