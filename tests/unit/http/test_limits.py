"""HTTP limits: the refusal summary, the descriptor cap, the lookup budget of push ingest."""

from __future__ import annotations

import resource

from alertbot.http.ingest import ResolveBudget
from alertbot.http.limits import DESCRIPTOR_HEADROOM, RefusalLog, descriptor_cap
from tests.support import ManualClock


def test_refusal_log_nothing_refused_no_line() -> None:
    assert RefusalLog().due(force=True) is None


def test_refusal_log_flood_summarised_at_most_once_per_interval() -> None:
    clock = ManualClock()
    seen: list[str] = []
    refusals = RefusalLog(interval=60, on_refusal=seen.append, clock=clock.monotonic)
    for _ in range(1_100):
        refusals.note("timeout")
    for _ in range(3):
        refusals.note("too_large")
    refusals.note("bad_request")
    clock.advance(2)
    assert refusals.due() == ("HTTP: 1,104 requests refused in the last 2 s "
                              "(timeouts 1,100, too large 3, malformed 1)")
    assert len(seen) == 1_104
    refusals.note("timeout")
    clock.advance(30)
    assert refusals.due() is None, "a second line within the interval waits"
    clock.advance(30)
    assert refusals.due() == "HTTP: 1 request refused in the last 60 s (timeouts 1)"
    assert refusals.due(force=True) is None


def test_refusal_log_first_error_once_per_interval() -> None:
    clock = ManualClock()
    refusals = RefusalLog(interval=60, clock=clock.monotonic)
    assert refusals.first_error()
    assert not refusals.first_error()
    clock.advance(61)
    assert refusals.first_error()


def test_descriptor_cap_stays_below_open_file_limit() -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert descriptor_cap(10) == 10
    if soft != resource.RLIM_INFINITY:
        assert descriptor_cap(soft * 2) == soft - DESCRIPTOR_HEADROOM


def test_resolve_budget_per_request_and_sliding_minute() -> None:
    clock = ManualClock()
    budget = ResolveBudget(per_request=10, per_minute=25, clock=clock.monotonic)
    assert budget.available() == 10
    for _ in range(10):
        budget.spend()
    clock.advance(20)
    for _ in range(10):
        budget.spend()
    assert budget.available() == 5
    for _ in range(5):
        budget.spend()
    assert (budget.available(), budget.retry_after()) == (0, 40)
    clock.advance(40)
    assert budget.available() == 10
