"""Throttle plan: table tests of every reason, and property tests over random streams."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alertbot.domain.models import (
    Change,
    DigestSchedule,
    Direction,
    Kind,
    Mode,
    Policy,
    QuietHours,
    Reason,
    Token,
    make_change_id,
)
from alertbot.domain.scheduled_digest import DIGEST_TOKEN
from alertbot.domain.throttle import DueAlert, next_free_slot, plan, quiet_end

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
TOKENS = [Token(i, f"T{i}", f"Token {i}") for i in range(1, 4)]


def change(seconds: float = 0, token: int = 0, kind: Kind = Kind.SIGNAL,
           to: float = 1.0) -> Change:
    detected = NOW + timedelta(seconds=seconds)
    return Change(make_change_id(TOKENS[token].token_id, kind, -to, to, detected), TOKENS[token],
                  kind, -to, to, Direction.UP if to > 0 else Direction.DOWN, detected, detected,
                  "bearish" if to > 0 else "bullish", "bullish" if to > 0 else "bearish", "flip")


def due(*changes: Change, held: bool = False) -> list[DueAlert]:
    return [DueAlert(i, c, held=held) for i, c in enumerate(changes, start=1)]


def test_plan_under_budget_sends_each_alert_alone() -> None:
    result = plan(Policy(max_alerts=3), due(change(), change(1)), [], NOW + timedelta(seconds=2))
    assert [d.reason for d in result.singles] == [Reason.SENT, Reason.SENT]
    assert result.digest == [] and result.messages == 2


def test_plan_over_budget_puts_the_rest_in_one_digest() -> None:
    result = plan(Policy(max_alerts=3), due(*(change(i) for i in range(6))), [],
                  NOW + timedelta(seconds=10))
    assert [d.row_id for d in result.singles] == [1, 2]
    assert [d.row_id for d in result.digest] == [3, 4, 5, 6]
    assert result.messages == 3


def test_plan_full_window_holds_until_a_slot_frees() -> None:
    sent = [NOW - timedelta(minutes=50), NOW - timedelta(minutes=10)]
    result = plan(Policy(max_alerts=2), due(change()), sent, NOW)
    (held,) = result.held
    assert held.reason is Reason.HELD_RATE
    assert held.until == NOW + timedelta(minutes=10)
    assert result.wake_at == held.until


def test_plan_held_group_is_released_as_one_digest_with_newcomers() -> None:
    alerts = [DueAlert(1, change(0), held=True), DueAlert(2, change(1), held=True),
              DueAlert(3, change(2))]
    result = plan(Policy(max_alerts=5), alerts, [], NOW + timedelta(seconds=5))
    assert [d.row_id for d in result.digest] == [1, 2, 3]
    assert result.singles == []


def test_plan_single_held_alert_is_sent_alone() -> None:
    result = plan(Policy(), [DueAlert(1, change(), held=True)], [], NOW)
    assert [d.reason for d in result.singles] == [Reason.SENT]


def test_plan_quiet_hours_hold_until_their_end() -> None:
    quiet = QuietHours(time(11, 0), time(13, 30), "UTC")
    result = plan(Policy(quiet=quiet), due(change()), [], NOW)
    (held,) = result.held
    assert held.reason is Reason.HELD_QUIET
    assert held.until == datetime(2026, 11, 27, 13, 30, tzinfo=UTC)


def test_plan_muted_alerts_are_suppressed() -> None:
    policy = Policy(mute_until=NOW + timedelta(hours=1))
    result = plan(policy, due(change()), [], NOW)
    assert [d.reason for d in result.suppressed] == [Reason.MUTED]
    assert result.messages == 0


def test_plan_mute_expired_sends() -> None:
    result = plan(Policy(mute_until=NOW), due(change()), [], NOW)
    assert result.messages == 1


def test_plan_muted_token_is_suppressed_until_its_end_and_others_are_sent() -> None:
    until = NOW + timedelta(hours=24)
    result = plan(Policy(), due(change(token=1), change(seconds=1, token=2)), [], NOW,
                  {TOKENS[1].token_id: until})
    assert [(d.reason, d.until) for d in result.suppressed] == [(Reason.TOKEN_MUTED, until)]
    assert [d.reason for d in result.singles] == [Reason.SENT]


def test_plan_token_mute_ended_sends() -> None:
    result = plan(Policy(), due(change(token=1)), [], NOW, {TOKENS[1].token_id: NOW})
    assert result.messages == 1 and not result.suppressed


def test_plan_kind_off_suppresses_and_silent_marks_silent() -> None:
    policy = Policy(modes={Kind.HOURLY: Mode.OFF, Kind.SIGNAL: Mode.SILENT})
    result = plan(policy, due(change(kind=Kind.HOURLY), change(1, kind=Kind.SIGNAL)), [],
                  NOW + timedelta(seconds=1))
    assert [d.reason for d in result.suppressed] == [Reason.KIND_OFF]
    assert [(d.reason, d.silent) for d in result.singles] == [(Reason.SENT, True)]


def test_plan_settle_defers_until_settled() -> None:
    policy = Policy(settle=timedelta(minutes=5))
    result = plan(policy, due(change()), [], NOW + timedelta(minutes=1))
    (deferred,) = result.deferred
    assert (deferred.reason, deferred.until) == (Reason.SETTLING, NOW + timedelta(minutes=5))


def test_plan_flap_within_settle_cancels_both_sides() -> None:
    up, down = change(0, to=1.0), change(60, to=-1.0)
    alerts = [DueAlert(1, up, next_change=down, next_row_id=2)]
    result = plan(Policy(settle=timedelta(minutes=5)), alerts, [], NOW + timedelta(minutes=5))
    assert {(d.row_id, d.reason) for d in result.suppressed} == {
        (1, Reason.FLAP_CANCELLED), (2, Reason.FLAP_CANCELLED)}
    assert result.messages == 0


def test_plan_flap_both_due_together_sends_neither() -> None:
    # After downtime both sides of a flap are due in the same plan.
    up, down = change(0, to=1.0), change(60, to=-1.0)
    alerts = [DueAlert(1, up, next_change=down, next_row_id=2), DueAlert(2, down)]
    result = plan(Policy(settle=timedelta(minutes=5)), alerts, [], NOW + timedelta(hours=1))
    assert sorted(d.row_id for d in result.suppressed) == [1, 2]
    assert result.messages == 0


def test_plan_revert_after_settle_is_not_a_flap() -> None:
    up, down = change(0, to=1.0), change(400, to=-1.0)
    alerts = [DueAlert(1, up, next_change=down, next_row_id=2)]
    result = plan(Policy(settle=timedelta(minutes=5)), alerts, [], NOW + timedelta(minutes=5))
    assert [d.row_id for d in result.singles] == [1]


@pytest.mark.parametrize(("clock", "expected_end"), [
    (time(23, 30), datetime(2026, 11, 28, 7, 0)),
    (time(6, 59), datetime(2026, 11, 27, 7, 0)),
    (time(7, 0), None),
    (time(21, 59), None),
    (time(22, 0), datetime(2026, 11, 28, 7, 0)),
])
def test_quiet_end_wraps_past_midnight(clock: time, expected_end: datetime | None) -> None:
    quiet = QuietHours(time(22, 0), time(7, 0), "UTC")
    now = datetime.combine(NOW.date(), clock, tzinfo=UTC)
    end = quiet_end(quiet, now)
    assert end == (expected_end.replace(tzinfo=UTC) if expected_end else None)


def test_quiet_end_uses_the_configured_time_zone() -> None:
    # 22:30 in Berlin (UTC+1 in November) is 21:30 UTC.
    quiet = QuietHours(time(22, 0), time(7, 0), "Europe/Berlin")
    end = quiet_end(quiet, datetime(2026, 11, 27, 21, 30, tzinfo=UTC))
    assert end == datetime(2026, 11, 28, 6, 0, tzinfo=UTC)
    assert quiet_end(quiet, datetime(2026, 11, 27, 20, 30, tzinfo=UTC)) is None


def test_next_free_slot_is_when_the_oldest_counted_send_leaves() -> None:
    policy = Policy(max_alerts=2, window=timedelta(minutes=10))
    sent = [NOW - timedelta(minutes=9), NOW - timedelta(minutes=3), NOW - timedelta(minutes=1)]
    assert next_free_slot(sent, policy, NOW) == NOW + timedelta(minutes=7)
    assert next_free_slot(sent[:1], policy, NOW) is None


# ---------------------------------------------------------------------------- properties


@dataclass
class _Row:
    row_id: int
    change: Change
    state: str = "pending"
    next_at: datetime = NOW
    outcome: str = ""


@dataclass
class _Simulation:
    policy: Policy
    rows: list[_Row] = field(default_factory=list)
    messages: list[tuple[datetime, tuple[int, ...]]] = field(default_factory=list)

    def series_next(self, row: _Row) -> _Row | None:
        later = [r for r in self.rows
                 if r.change.token == row.change.token and r.change.kind == row.change.kind
                 and r.change.detected_at > row.change.detected_at]
        return min(later, key=lambda r: r.change.detected_at, default=None)

    def step(self, now: datetime) -> None:
        held_due = any(r.state == "held" and r.next_at <= now for r in self.rows)
        pending = [r for r in self.rows if r.state == "pending" and r.next_at <= now]
        if not pending and not held_due:
            return
        group = pending + [r for r in self.rows if r.state == "held"]
        alerts = []
        for row in group:
            following = self.series_next(row)
            alerts.append(DueAlert(row.row_id, row.change, held=row.state == "held",
                                   next_change=following.change if following else None,
                                   next_row_id=following.row_id if following else None))
        sent = [t for t, _ in self.messages]
        result = plan(self.policy, alerts, sent, now)
        decided = [d.row_id for group in (result.suppressed, result.held, result.deferred,
                                          result.singles, result.digest) for d in group]
        assert len(decided) == len(set(decided)), "a row got two decisions in one plan"
        by_id = {r.row_id: r for r in self.rows}
        for d in result.suppressed:
            row = by_id[d.row_id]
            if row.state in ("pending", "held"):
                row.state, row.outcome = "done", f"suppressed:{d.reason.value}"
        for d in result.held:
            by_id[d.row_id].state = "held"
            by_id[d.row_id].next_at = d.until or now
        for d in result.deferred:
            by_id[d.row_id].next_at = d.until or now
        for d in result.singles:
            by_id[d.row_id].state, by_id[d.row_id].outcome = "done", "alone"
            self.messages.append((now, (d.row_id,)))
        if result.digest:
            for d in result.digest:
                by_id[d.row_id].state, by_id[d.row_id].outcome = "done", "digest"
            self.messages.append((now, tuple(d.row_id for d in result.digest)))


policies = st.builds(
    Policy,
    max_alerts=st.integers(1, 5),
    window=st.integers(30, 1800).map(lambda s: timedelta(seconds=s)),
    quiet=st.one_of(st.none(), st.builds(
        QuietHours, start=st.integers(0, 23).map(lambda h: time(h, 0)),
        end=st.integers(0, 23).map(lambda h: time(h, 30)), tz=st.just("UTC"))),
    mute_until=st.one_of(st.none(), st.integers(0, 7200).map(
        lambda s: NOW + timedelta(seconds=s))),
    settle=st.sampled_from([0, 0, 60, 300]).map(lambda s: timedelta(seconds=s)),
    modes=st.dictionaries(st.sampled_from(list(Kind)), st.sampled_from(list(Mode)),
                          max_size=2),
)
events = st.lists(
    st.tuples(st.integers(0, 3 * 3600), st.integers(0, 2), st.sampled_from(list(Kind))),
    min_size=1, max_size=40,
)


def simulate(policy: Policy, stream: list[tuple[int, int, Kind]]) -> _Simulation:
    sim = _Simulation(policy)
    values: dict[tuple[int, Kind], float] = {}
    arrivals: list[tuple[datetime, Change]] = []
    for offset, token, kind in sorted(stream):
        # Every event flips its series, so reverts (flaps) happen naturally.
        to = -values.get((token, kind), -1.0)
        values[(token, kind)] = to
        arrivals.append((NOW + timedelta(seconds=offset, microseconds=len(arrivals)),
                         change(offset + len(arrivals) / 1e6, token, kind, to)))
    now = arrivals[0][0]
    for _ in range(10_000):
        while arrivals and arrivals[0][0] <= now:
            _, new = arrivals.pop(0)
            sim.rows.append(_Row(len(sim.rows) + 1, new, next_at=new.detected_at))
        sim.step(now)
        waiting = [r.next_at for r in sim.rows if r.state in ("pending", "held")]
        upcoming = [t for t, _ in arrivals[:1]] + waiting
        if not upcoming:
            return sim
        now = max(now + timedelta(microseconds=1), min(upcoming))
    raise AssertionError("simulation did not settle")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy=policies, stream=events)
def test_plan_property_every_change_ends_exactly_once(policy: Policy,
                                                      stream: list[tuple[int, int, Kind]]) -> None:
    sim = simulate(policy, stream)
    assert all(r.state == "done" for r in sim.rows)
    delivered = [row_id for _, ids in sim.messages for row_id in ids]
    assert len(delivered) == len(set(delivered)), "a change was delivered twice"
    for row in sim.rows:
        in_messages = delivered.count(row.row_id)
        if row.outcome.startswith("suppressed:"):
            assert in_messages == 0
        else:
            assert row.outcome in ("alone", "digest") and in_messages == 1
    for _, ids in sim.messages:
        outcomes = {next(r.outcome for r in sim.rows if r.row_id == i) for i in ids}
        assert outcomes == ({"digest"} if len(ids) > 1 else {"alone"})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy=policies, stream=events)
def test_plan_property_no_window_exceeds_max_alerts(policy: Policy,
                                                   stream: list[tuple[int, int, Kind]]) -> None:
    sim = simulate(policy, stream)
    times = sorted(t for t, _ in sim.messages)
    for i, end in enumerate(times):
        in_window = sum(1 for t in times[: i + 1] if t > end - policy.window)
        assert in_window <= policy.max_alerts


@settings(max_examples=150, deadline=None)
@given(stream=events)
def test_plan_property_muted_forever_sends_nothing(stream: list[tuple[int, int, Kind]]) -> None:
    sim = simulate(Policy(mute_until=NOW + timedelta(days=30)), stream)
    assert sim.messages == []
    assert all(r.outcome == "suppressed:muted" for r in sim.rows)


# ---------------------------------------------------------------------------- scheduled digests


def scheduled(seconds: float = 0) -> Change:
    detected = NOW + timedelta(seconds=seconds)
    return Change(f"digest{seconds}", DIGEST_TOKEN, Kind.SCHEDULED_DIGEST, 0.0, 3.0,
                  Direction.UP, detected, detected, "daily:2026-11-27", "Daily digest", "{}")


def _digest_policy(**kw: object) -> Policy:
    return Policy(digest=DigestSchedule(False, time(9, 0), only=True), **kw)  # type: ignore[arg-type]


def test_plan_digest_only_suppresses_changes_with_their_reason() -> None:
    result = plan(_digest_policy(), due(change(), change(1, kind=Kind.TM_GRADE)), [], NOW)
    assert [d.reason for d in result.suppressed] == [Reason.DIGEST_ONLY, Reason.DIGEST_ONLY]
    assert result.messages == 0


def test_plan_digest_not_only_sends_changes_as_usual() -> None:
    policy = Policy(digest=DigestSchedule(False, time(9, 0)))
    assert [d.reason for d in plan(policy, due(change()), [], NOW).singles] == [Reason.SENT]


def test_plan_scheduled_digest_is_its_own_message_never_in_a_throttle_digest() -> None:
    alerts = due(change(0), change(1), scheduled(2), change(3))
    result = plan(Policy(max_alerts=2), alerts, [], NOW + timedelta(seconds=5))
    assert [d.row_id for d in result.singles] == [3]
    assert [d.row_id for d in result.digest] == [1, 2, 4]


def test_plan_scheduled_digest_passes_digest_only() -> None:
    result = plan(_digest_policy(), due(change(), scheduled(1)), [], NOW + timedelta(seconds=1))
    assert [(d.row_id, d.reason) for d in result.singles] == [(2, Reason.SENT)]
    assert [d.row_id for d in result.suppressed] == [1]


def test_plan_scheduled_digest_held_by_quiet_hours_until_they_end() -> None:
    quiet = QuietHours(time(11, 0), time(13, 30), "UTC")
    (held,) = plan(Policy(quiet=quiet), due(scheduled()), [], NOW).held
    assert held.reason is Reason.HELD_QUIET
    assert held.until == datetime(2026, 11, 27, 13, 30, tzinfo=UTC)


def test_plan_scheduled_digest_waits_for_a_free_slot() -> None:
    sent = [NOW - timedelta(minutes=30)]
    (held,) = plan(Policy(max_alerts=1), due(scheduled()), sent, NOW).held
    assert (held.reason, held.until) == (Reason.HELD_RATE, NOW + timedelta(minutes=30))


def test_plan_scheduled_digest_muted_with_the_destination() -> None:
    policy = Policy(mute_until=NOW + timedelta(hours=1))
    (muted,) = plan(policy, due(scheduled()), [], NOW).suppressed
    assert muted.reason is Reason.MUTED


def test_plan_scheduled_digest_ignores_kind_modes_and_flap_guard() -> None:
    policy = Policy(settle=timedelta(minutes=5), modes={Kind.SIGNAL: Mode.OFF})
    result = plan(policy, due(scheduled()), [], NOW)
    assert [d.reason for d in result.singles] == [Reason.SENT]


def test_plan_digest_only_kind_off_stays_kind_off() -> None:
    policy = _digest_policy(modes={Kind.HOURLY: Mode.OFF})
    result = plan(policy, due(change(), change(1, kind=Kind.HOURLY)), [], NOW)
    assert [d.reason for d in result.suppressed] == [Reason.DIGEST_ONLY, Reason.KIND_OFF]


def test_plan_digest_only_muted_token_is_token_muted_not_digest_only() -> None:
    # A mute wins over digest_only: the change is kept out of the scheduled digest too.
    muted = {TOKENS[0].token_id: NOW + timedelta(hours=24)}
    result = plan(_digest_policy(), due(change(), change(1, token=1)), [], NOW, muted)
    assert [d.reason for d in result.suppressed] == [Reason.TOKEN_MUTED, Reason.DIGEST_ONLY]


def test_plan_digest_only_muted_destination_is_muted_not_digest_only() -> None:
    policy = _digest_policy(mute_until=NOW + timedelta(hours=2))
    result = plan(policy, due(change()), [], NOW)
    assert [d.reason for d in result.suppressed] == [Reason.MUTED]
