"""The per-user command flood guard: a pure sliding-window decision."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alertbot.domain.flood import FloodGuard, Verdict, slow_down_text


def test_flood_guard_within_budget_allows_then_warns_once_then_drops() -> None:
    guard = FloodGuard(budget=3, window=60)
    verdicts = [guard.check("u", float(t)) for t in range(6)]
    assert verdicts == [Verdict.ALLOW] * 3 + [Verdict.WARN, Verdict.DROP, Verdict.DROP]


def test_flood_guard_window_passed_allows_again_and_can_warn_again() -> None:
    guard = FloodGuard(budget=2, window=60)
    for t in (0.0, 1.0, 2.0):
        guard.check("u", t)
    assert guard.retry_in("u", 2.0) == 58.0
    assert guard.check("u", 60.0) is Verdict.ALLOW  # the command at 0 left the window
    assert guard.check("u", 60.5) is Verdict.WARN


def test_flood_guard_users_are_independent() -> None:
    guard = FloodGuard(budget=1, window=60)
    assert guard.check("member", 0) is Verdict.ALLOW
    assert guard.check("member", 0) is Verdict.WARN
    assert guard.check("admin", 0) is Verdict.ALLOW


def test_flood_guard_forgets_idle_users() -> None:
    guard = FloodGuard(budget=1, window=60)
    for user in range(100):
        guard.check(str(user), 0)
    guard.check("late", 120)
    assert len(guard) == 1


@pytest.mark.parametrize(("budget", "window"), [(0, 60), (1, 0), (1, float("nan"))])
def test_flood_guard_bad_settings_raise(budget: int, window: float) -> None:
    with pytest.raises(ValueError):
        FloodGuard(budget=budget, window=window)


def test_slow_down_text_names_budget_and_wait() -> None:
    assert slow_down_text(12.2) == ("Slow down: at most 10 commands a minute. I will answer "
                                    "you again in 13s; commands sent until then are ignored.")


@given(st.lists(st.floats(min_value=0, max_value=600, allow_nan=False), max_size=200))
def test_flood_guard_never_admits_more_than_budget_in_any_window(times: list[float]) -> None:
    guard = FloodGuard(budget=5, window=60)
    admitted = [t for t in sorted(times) if guard.check("u", t) is Verdict.ALLOW]
    for start in admitted:
        assert sum(start <= t < start + 60 for t in admitted) <= 5
