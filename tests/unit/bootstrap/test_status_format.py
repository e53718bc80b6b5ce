"""`alertbot status` lines from a leadership status: leading, lease run out, silent replicas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alertbot.bootstrap.maintenance import format_status
from alertbot.ports.leadership import (
    LeaderRecord,
    LeadershipStatus,
    ReplicaId,
    ReplicaRecord,
    Role,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
A, B = ReplicaId("bot-a", 7), ReplicaId("bot-b", 8)


def status(expires: datetime | None, *, a_beat: timedelta = timedelta(seconds=1),
           a_role: Role = Role.LEADER) -> LeadershipStatus:
    leader = LeaderRecord(A, 3, NOW - timedelta(minutes=5), expires)
    return LeadershipStatus(leader, [
        ReplicaRecord(A, NOW - timedelta(hours=1), NOW - a_beat, a_role),
        ReplicaRecord(B, NOW - timedelta(hours=1), NOW - timedelta(minutes=10), Role.STANDBY),
    ], NOW)


def test_status_lease_held_names_leader_epoch_since_and_lease_end() -> None:
    lines, leading = format_status(status(NOW + timedelta(seconds=4)))
    assert leading
    assert lines[0] == ("leader: bot-a pid 7 (epoch 3) since 2026-11-30 11:55:00 UTC (5m ago);"
                        " lease until 2026-11-30 12:00:04 UTC")
    assert lines[1] == "replicas: 2"
    assert lines[2] == ("  bot-a pid 7: leader, started 2026-11-30 11:00:00 UTC,"
                        " last heartbeat 1s ago")
    assert lines[3].endswith("last heartbeat 10m ago (silent: probably stopped)")


def test_status_lease_run_out_nobody_leads() -> None:
    lines, leading = format_status(status(NOW - timedelta(seconds=1)))
    assert not leading
    assert lines[0].startswith("leader: none now; the last was bot-a pid 7 (epoch 3) since ")


def test_status_sqlite_leader_silent_or_standing_by_is_not_leading() -> None:
    assert format_status(status(None))[1]
    assert not format_status(status(None, a_beat=timedelta(minutes=1)))[1]
    assert not format_status(status(None, a_role=Role.STANDBY))[1]


def test_status_no_leader_yet() -> None:
    lines, leading = format_status(LeadershipStatus(None, [], NOW))
    assert not leading and lines == [
        "leader: none (no `alertbot run` has started on this database yet)", "replicas: 0"]
