"""deploy/docker-compose.yml for real: build, start the demo, health, an alert, `alertbot check`.

Runs only where a Docker daemon and the compose plugin answer; elsewhere it skips with one line
(the compose file is still checked statically by tests/unit/test_deploy_files.py). The compose
file is used as committed, except for what a test must not share with the machine: a free host
port, empty secret files in a temporary directory, and a project name of its own.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "docker-compose.yml"


def _docker_missing() -> str | None:
    if shutil.which("docker") is None:
        return "no docker command on this machine"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, check=False,
                          timeout=30)
    if info.returncode != 0:
        return "no Docker daemon answers (docker info failed)"
    plugin = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True,
                            check=False, timeout=30)
    if plugin.returncode != 0:
        return "the docker compose plugin is not installed"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _compose_file(tmp: Path) -> Path:
    """The committed compose file with absolute paths and secrets in `tmp` (all empty, 0444)."""
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    service = data["services"]["alertbot"]
    service["build"]["context"] = str(ROOT)
    service["image"] = "alertbot:smoke"
    service.pop("env_file", None)  # the developer's own .env stays out of the test
    secrets = tmp / "secrets"
    secrets.mkdir(mode=0o700)
    for name, source in data["secrets"].items():
        path = secrets / Path(source["file"]).name
        path.touch()
        path.chmod(0o444)  # the documented mode: readable by the container's uid 10001
        data["secrets"][name] = {"file": str(path)}
    path = tmp / "docker-compose.yml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.timeout(900)
def test_compose_demo_builds_starts_alerts_and_checks(tmp_path: Path) -> None:
    reason = _docker_missing()
    if reason:
        pytest.skip(reason)
    port = _free_port()
    compose = ["docker", "compose", "-p", f"alertbot-smoke-{uuid.uuid4().hex[:8]}",
               "-f", str(_compose_file(tmp_path))]
    env = {**os.environ, "ALERTBOT_PUBLISH_PORT": str(port)}

    def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*compose, *args], capture_output=True, text=True, env=env,
                              check=False, timeout=timeout)

    try:
        built = docker("up", "-d", "--build", "--wait", "--wait-timeout", "120", timeout=800)
        assert built.returncode == 0, built.stderr[-3000:]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as answer:
            assert answer.status == 200 and answer.read().strip() == b"ok"
        deadline = time.monotonic() + 120
        logs = ""
        while time.monotonic() < deadline:
            logs = docker("logs", "--no-color", "alertbot").stdout
            if " signal turned " in logs:
                break
            time.sleep(2)
        assert " signal turned " in logs, f"no console alert in the logs:\n{logs[-3000:]}"
        check = docker("exec", "-T", "alertbot", "alertbot", "check")
        assert check.returncode == 0, check.stdout + check.stderr
        assert "configuration: ok" in check.stdout
    finally:
        docker("down", "-v", "--remove-orphans", timeout=180)
