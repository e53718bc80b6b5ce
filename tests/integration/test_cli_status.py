"""`alertbot status` on SQLite: who leads (host, pid, epoch, since when) and the heartbeats."""

from __future__ import annotations

import asyncio
import os
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alertbot.ports.leadership import ReplicaId, ReplicaRecord, Role
from alertbot.store.sqlite import SqliteStore
from tests.support import run_cli


@pytest.fixture(autouse=True)
def workspace(cli_workspace: Path) -> Path:
    return cli_workspace


async def leading(path: Path, replica: ReplicaId) -> None:
    """Record what a running leader records: an epoch and a fresh heartbeat."""
    store = SqliteStore(str(path))
    await store.open()
    try:
        now = datetime.now(UTC)
        await store.begin_epoch(str(replica), now)
        await store.heartbeat(ReplicaRecord(replica, now, now, Role.LEADER), now)
    finally:
        await store.close()


def test_cli_status_fresh_database_no_leader_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "status")
    assert code == 1
    assert out.splitlines() == [
        "leader: none (no `alertbot run` has started on this database yet)", "replicas: 0"]


def test_cli_status_running_leader_named_with_pid_and_epoch(
        capsys: pytest.CaptureFixture[str], workspace: Path) -> None:
    asyncio.run(leading(workspace / "cli.db", ReplicaId("bot-host-1", 4242)))
    code, out, _ = run_cli(capsys, "status")
    assert code == 0
    first, count, replica = out.splitlines()
    assert first.startswith("leader: bot-host-1 pid 4242 (epoch 1) since ")
    assert first.endswith("; no lease (SQLite: one process)")
    assert count == "replicas: 1"
    assert replica.startswith("  bot-host-1 pid 4242: leader, started ")
    assert "last heartbeat 0s ago" in replica or "last heartbeat 1s ago" in replica


def test_cli_status_after_run_once_names_the_last_leader_standing_by(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, "run", "--once")[0] == 0
    assert run_cli(capsys, "run", "--once")[0] == 0
    code, out, _ = run_cli(capsys, "status")
    assert code == 1
    me = f"{socket.gethostname()} pid {os.getpid()}"
    lines = out.splitlines()
    assert lines[0].startswith(f"leader: none now; the last was {me} (epoch 2) since ")
    assert lines[1] == "replicas: 1" and lines[2].startswith(f"  {me}: standby, started ")
