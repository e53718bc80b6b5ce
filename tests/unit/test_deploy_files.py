"""Static checks of deploy/: `docker build` cannot run on CI, so the files are parsed instead.

Dockerfile, compose file, systemd unit and Prometheus rules are checked for structure, for the
hardening they promise, for configuration names alertbot actually reads, and for metric names
and labels that /metrics actually exports.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from alertbot.config import FILE_VARIABLES, SECRET_VARIABLES, Settings
from alertbot.domain.models import Change, Destination, Direction, Kind, Reason, Token
from alertbot.observability.metrics import Metrics, QuotaUsage
from alertbot.ports.observers import PollReport
from alertbot.ports.store import OutboxStats
from alertbot.services.dispatcher import stop_bound

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KNOWN_VARIABLES = (
    {info.alias for info in Settings.model_fields.values() if info.alias}
    | {f"{name}_FILE" for name in FILE_VARIABLES}
    | {"PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PIP_NO_CACHE_DIR",
       "PIP_DISABLE_PIP_VERSION_CHECK"}
)


# ------------------------------------------------------------------ parsers


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in (DEPLOY / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, rest = line.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    assert not pending, "a continuation line runs off the end"
    return instructions


def final_stage() -> list[tuple[str, str]]:
    steps = dockerfile()
    last = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last:]


def env_of(steps: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, args in steps:
        if keyword == "ENV":
            for pair in args.split():
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def systemd_unit() -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in (DEPLOY / "alertbot.service").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"setting outside a section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {line}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def compose() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def rules() -> list[dict[str, Any]]:
    data = yaml.safe_load((DEPLOY / "prometheus" / "alertbot-rules.yml").read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


@cache
def exported() -> dict[str, set[str]]:
    """Sample name -> label names, from /metrics of a Metrics fed by every hook once."""
    metrics = Metrics()
    now = datetime(2026, 11, 27, tzinfo=UTC)
    destination = Destination("telegram", "-1")
    change = Change("c" * 32, Token(1, "BTC", "Bitcoin"), Kind.SIGNAL, -1.0, 1.0, Direction.UP,
                    now, now, "bearish", "bullish", "flip")
    metrics.poll_finished(PollReport(changes=[change]), 0.5, True)
    metrics.decided(destination, Reason.SENT, 1)
    metrics.delivered(destination, [change], now)
    metrics.failed(destination, "dead")
    metrics.paused(destination, "gone")
    metrics.api_call("/tm-grade", "200")
    metrics.ops_event("quota")
    metrics.ingest_result("accepted")
    metrics.job_failed("poller", now, "ValueError: boom", 1)
    metrics.http_refused("timeout")
    metrics.set_state(outbox=OutboxStats({"pending": 1}, now), now=now, interval_s=60.0,
                      last_success=now, quota=QuotaUsage(10, 100, "2026-11"))
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


# ------------------------------------------------------------------ Dockerfile


def test_dockerfile_images_slim_and_final_user_not_root() -> None:
    images = [args.split()[0] for keyword, args in dockerfile() if keyword == "FROM"]
    assert images and all(re.fullmatch(r"python:3\.1[1-9]-slim(@sha256:[0-9a-f]{64})?", i)
                          for i in images), images
    users = [args for keyword, args in final_stage() if keyword == "USER"]
    assert users, "the final stage must switch to an unprivileged user"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")


def test_dockerfile_healthcheck_probes_healthz_on_configured_port() -> None:
    [check] = [args for keyword, args in final_stage() if keyword == "HEALTHCHECK"]
    command = json.loads(check[check.index("CMD") + 3:].strip())
    assert command[:2] == ["python", "-c"]
    compile(command[2], "<healthcheck>", "exec")  # the probe is valid Python
    assert "/healthz" in command[2] and "ALERTBOT_HTTP_PORT" in command[2]
    default = re.search(r"get\('ALERTBOT_HTTP_PORT', '(\d+)'\)", command[2])
    assert default and default.group(1) == env_of(final_stage())["ALERTBOT_HTTP_PORT"]
    assert "--interval=" in check and "--timeout=" in check


def test_dockerfile_database_on_volume_and_http_on_all_interfaces() -> None:
    env = env_of(final_stage())
    assert env["ALERTBOT_HTTP_HOST"] == "0.0.0.0"
    database = env["ALERTBOT_DATABASE_URL"].removeprefix("sqlite:///")
    volumes = [v for keyword, args in final_stage() if keyword == "VOLUME"
               for v in json.loads(args)]
    assert any(database.startswith(v.rstrip("/") + "/") for v in volumes), (database, volumes)
    exposed = [args for keyword, args in final_stage() if keyword == "EXPOSE"]
    assert exposed == [env["ALERTBOT_HTTP_PORT"]]


def test_dockerfile_copies_existing_sources_and_runs_alertbot() -> None:
    for keyword, args in dockerfile():
        if keyword == "COPY" and not args.startswith("--from"):
            for source in args.split()[:-1]:
                assert (ROOT / source).exists(), source
    steps = dict((k, a) for k, a in final_stage() if k in ("ENTRYPOINT", "CMD"))
    assert json.loads(steps["ENTRYPOINT"]) == ["alertbot"]
    assert json.loads(steps["CMD"]) == ["run"]


def test_dockerfile_env_names_known_and_no_secret_values() -> None:
    env = env_of(dockerfile())
    assert set(env) <= KNOWN_VARIABLES, set(env) - KNOWN_VARIABLES
    assert not set(env) & set(SECRET_VARIABLES)


def test_dockerignore_admits_only_what_the_build_copies() -> None:
    lines = [line.strip() for line in (DEPLOY / "Dockerfile.dockerignore").read_text()
             .splitlines() if line.strip() and not line.startswith("#")]
    assert lines[0] == "*"
    admitted = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = {source.rstrip("/") for keyword, args in dockerfile()
              if keyword == "COPY" and not args.startswith("--from")
              for source in args.split()[:-1]}
    assert admitted == copied


def test_lock_pins_every_runtime_dependency_with_hashes_within_its_range() -> None:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pinned: dict[str, str] = {}
    hashed: set[str] = set()
    current = ""
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^ \\]+)", line)
        if match:
            current = canonicalize_name(match.group(1))
            pinned[current] = match.group(2)
        elif "--hash=sha256:" in line and current:
            hashed.add(current)
    declared = [Requirement(r) for r in tomllib.loads(
        (ROOT / "pyproject.toml").read_text())["project"]["dependencies"]]
    for requirement in declared:
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{name} is not in requirements.lock"
        assert requirement.specifier.contains(pinned[name]), (name, pinned[name])
    assert set(pinned) == hashed, set(pinned) - hashed


def test_dockerfile_installs_the_lock_with_hashes() -> None:
    runs = " ".join(args for keyword, args in dockerfile() if keyword == "RUN")
    assert "--require-hashes -r requirements.lock" in runs
    assert "--no-deps ." in runs


# ------------------------------------------------------------------ compose


def test_compose_builds_deploy_dockerfile_with_data_volume() -> None:
    data = compose()
    service = data["services"]["alertbot"]
    context = (DEPLOY / service["build"]["context"]).resolve()
    assert context == ROOT
    assert (context / service["build"]["dockerfile"]).is_file()
    mounts = {m.split(":")[1]: m.split(":")[0] for m in service["volumes"]}
    assert mounts["/data"] in data["volumes"]
    database = service["environment"]["ALERTBOT_DATABASE_URL"].removeprefix("sqlite:///")
    assert database.startswith("/data/")


def test_compose_secrets_passed_as_files_only() -> None:
    data = compose()
    service = data["services"]["alertbot"]
    env = service["environment"]
    assert not set(env) & set(SECRET_VARIABLES), "secrets go in files, not the environment"
    for variable in SECRET_VARIABLES:
        path = env[f"{variable}_FILE"]
        name = path.removeprefix("/run/secrets/")
        assert name in service["secrets"] and name in data["secrets"], variable
        assert not Path(data["secrets"][name]["file"]).is_absolute()


def test_compose_service_hardened_and_port_on_loopback() -> None:
    service = compose()["services"]["alertbot"]
    assert service["read_only"] is True and "/tmp" in service["tmpfs"]
    assert service["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in service["security_opt"]
    assert all(port.startswith("127.0.0.1:") for port in service["ports"])
    assert service["restart"] == "unless-stopped"


def test_compose_env_uses_only_known_variable_names() -> None:
    env = compose()["services"]["alertbot"]["environment"]
    assert set(env) <= KNOWN_VARIABLES, set(env) - KNOWN_VARIABLES


def test_compose_passes_the_repository_dotenv_without_shadowing_it() -> None:
    service = compose()["services"]["alertbot"]
    [entry] = service["env_file"]
    assert (DEPLOY / entry["path"]).resolve() == ROOT / ".env"
    assert entry["required"] is False, "a missing .env must not stop `docker compose up`"
    # `${VAR:-default}` in `environment` would override the same variable from .env.
    shadowing = {name for name, value in service["environment"].items() if "${" in str(value)}
    assert not shadowing, shadowing


def test_compose_header_documents_secret_modes_and_cli_in_the_container() -> None:
    text = (DEPLOY / "docker-compose.yml").read_text()
    user = [args for keyword, args in final_stage() if keyword == "USER"][-1].split(":")[0]
    assert f"uid/gid {user}" in text and "0444" in text and "0440" in text
    assert "exec alertbot alertbot subscribe" in text
    assert "up -d --build" in text


# ------------------------------------------------------------------ systemd


HARDENING = {
    "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
    "PrivateTmp": "yes", "PrivateDevices": "yes", "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes", "ProtectControlGroups": "yes", "RestrictNamespaces": "yes",
    "RestrictSUIDSGID": "yes", "LockPersonality": "yes", "CapabilityBoundingSet": "",
    "SystemCallArchitectures": "native", "UMask": "0077",
}


def replicas_compose() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "docker-compose.replicas.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_replicas_compose_runs_two_bots_on_one_postgres_database() -> None:
    data = replicas_compose()
    services = data["services"]
    bots = sorted(name for name in services if name.startswith("alertbot-"))
    assert bots == ["alertbot-1", "alertbot-2"]
    urls = {services[b]["environment"]["ALERTBOT_DATABASE_URL_FILE"] for b in bots}
    assert urls == {"/run/secrets/database_url"}, "every replica shares one database"
    for bot in bots:
        assert "ALERTBOT_DATABASE_URL" not in services[bot]["environment"]
        assert services[bot]["depends_on"]["postgres"]["condition"] == "service_healthy"
    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert "ports" not in postgres, "the database is reached on the compose network only"
    assert postgres["environment"]["POSTGRES_PASSWORD_FILE"].startswith("/run/secrets/")


def test_replicas_compose_replicas_hardened_on_distinct_loopback_ports() -> None:
    data = replicas_compose()
    single = compose()["services"]["alertbot"]
    published = []
    for name in ("alertbot-1", "alertbot-2"):
        service = data["services"][name]
        assert service["build"] == single["build"] and service["env_file"] == single["env_file"]
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in service["security_opt"]
        assert service["stop_grace_period"] == single["stop_grace_period"]
        env = service["environment"]
        assert set(env) <= KNOWN_VARIABLES, set(env) - KNOWN_VARIABLES
        assert not {k for k, v in env.items() if "${" in str(v)}, "would shadow .env"
        for variable in SECRET_VARIABLES:
            secret = env[f"{variable}_FILE"].removeprefix("/run/secrets/")
            assert secret in service["secrets"] and secret in data["secrets"], variable
        [port] = service["ports"]
        assert port.startswith("127.0.0.1:")
        published.append(port.split(":")[1])
    assert len(set(published)) == 2


def test_systemd_unit_dedicated_user_and_hardening() -> None:
    service = systemd_unit()["Service"]
    assert service["User"] == ["alertbot"] and service["Group"] == ["alertbot"]
    for key, value in HARDENING.items():
        assert service.get(key) == [value], key
    assert "@system-service" in service["SystemCallFilter"]
    assert set(service["RestrictAddressFamilies"][0].split()) == {"AF_INET", "AF_INET6",
                                                                  "AF_UNIX"}


def test_systemd_unit_state_directory_holds_database_and_reload_sends_hup() -> None:
    unit = systemd_unit()
    service = unit["Service"]
    [state] = service["StateDirectory"]
    assert service["WorkingDirectory"] == [f"/var/lib/{state}"]
    env = dict(e.split("=", 1) for e in service["Environment"])
    assert env["ALERTBOT_DATABASE_URL"].startswith(f"sqlite:////var/lib/{state}/")
    assert set(env) <= KNOWN_VARIABLES
    assert service["ExecStart"][0].split()[-1] == "run"
    assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


SHUTDOWN_MARGIN = 5.0
"""Seconds for the rest of a clean stop after the dispatcher: HTTP, platform sessions, store."""


def seconds(text: str) -> float:
    """A systemd or compose duration such as `45s`, `1min 30s`, `1m30s` or `90`."""
    units = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", text.strip())
    assert parts and "".join(f"{n}{u}" for n, u in parts) == text.replace(" ", ""), text
    return sum(float(number) * units[unit] for number, unit in parts)


def test_systemd_and_compose_wait_longer_than_a_clean_stop_takes() -> None:
    needed = stop_bound() + SHUTDOWN_MARGIN
    [systemd] = systemd_unit()["Service"]["TimeoutStopSec"]
    [signal] = systemd_unit()["Service"]["KillSignal"]
    grace = compose()["services"]["alertbot"]["stop_grace_period"]
    # Killed sooner, a send in flight is cut off and repeated after the restart.
    assert signal == "SIGTERM"
    assert seconds(systemd) >= needed, (systemd, needed)
    assert seconds(grace) >= needed, (grace, needed)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_systemd_unit_verifies_and_exposure_low(tmp_path: Path) -> None:
    # verify needs ExecStart to exist: point it at this environment's alertbot.
    executable = Path(sys.executable).with_name("alertbot")
    unit = tmp_path / "alertbot.service"
    unit.write_text((DEPLOY / "alertbot.service").read_text()
                    .replace("/opt/alertbot/bin/alertbot", str(executable)))
    verify = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                            text=True, check=False, timeout=60)
    assert verify.returncode == 0, verify.stderr
    # The threshold is in tenths: 20 means an exposure level of at most 2.0 ("OK").
    security = subprocess.run(["systemd-analyze", "security", "--offline=yes",
                               "--threshold=20", str(unit)], capture_output=True, text=True,
                              check=False, timeout=60, cwd=tmp_path)
    assert security.returncode == 0, security.stdout[-500:]


# ------------------------------------------------------------------ Prometheus rules


def test_rules_have_alert_expr_severity_and_summary() -> None:
    found = rules()
    assert len(found) >= 4
    names = [rule["alert"] for rule in found]
    assert len(names) == len(set(names))
    for rule in found:
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), rule["alert"]
        assert rule["annotations"]["summary"]
        assert "for" not in rule or re.fullmatch(r"\d+[smhd]", rule["for"]), rule["alert"]
        expr = rule["expr"]
        for opening, closing in ("()", "{}", "[]"):
            assert expr.count(opening) == expr.count(closing), rule["alert"]


@pytest.mark.parametrize("topic", ["stale", "outbox", "deliveries", "quota"])
def test_rules_cover_required_topics(topic: str) -> None:
    metric = {"stale": "alertbot_last_successful_poll_timestamp_seconds",
              "outbox": "alertbot_outbox_rows", "deliveries": "alertbot_deliveries_total",
              "quota": "alertbot_tokenmetrics_quota_used_calls"}[topic]
    assert any(metric in rule["expr"] for rule in rules())


def test_rules_reference_only_exported_metrics_and_labels() -> None:
    available = exported()
    for rule in rules():
        expr = rule["expr"]
        for name in re.findall(r"\balertbot_[a-z0-9_]+", expr):
            assert name in available, f"{rule['alert']}: {name} is not exported"
        for name, matchers in re.findall(r"\b(alertbot_[a-z0-9_]+)\{([^}]*)\}", expr):
            labels = set(re.findall(r"([a-z_]+)\s*(?:=~|!=|!~|=)", matchers))
            assert labels <= available[name], f"{rule['alert']}: {name} has no {labels}"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool missing")
def test_rules_pass_promtool() -> None:
    result = subprocess.run(["promtool", "check", "rules",
                             str(DEPLOY / "prometheus" / "alertbot-rules.yml")],
                            capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_gitignore_keeps_deploy_secrets_out_of_the_repository() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    secrets = [source["file"] for source in compose()["secrets"].values()]
    assert secrets
    for path in secrets:
        relative = (DEPLOY / path).resolve().relative_to(ROOT)
        ignored = subprocess.run(["git", "check-ignore", "-q", str(relative)], cwd=ROOT,
                                 check=False)
        assert ignored.returncode == 0, f"{relative} would be committed"
