"""Sliding-window pacing: no window of a limit's length ever carries more than the limit."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alertbot.platforms.telegram.limits import (
    TELEGRAM_OVERALL,
    TELEGRAM_PER_CHAT,
    TELEGRAM_PER_GROUP,
)
from alertbot.ports.notifier import Limit
from alertbot.services.pacing import (
    LATENESS_FLOOR,
    LATENESS_MIN_SAMPLES,
    LATENESS_SAMPLES,
    Pacer,
    SlidingWindow,
)


class VirtualTime:
    """A clock that sleeping advances (discrete-event time, no real waiting)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def max_in_any_window(times: list[float], period: float) -> int:
    # Windows are half-open; the epsilon absorbs float rounding of sends exactly `period` apart.
    times = sorted(times)
    return max((sum(1 for t in times[: i + 1] if t > end - period + 1e-9)
                for i, end in enumerate(times)), default=0)


def test_sliding_window_allows_burst_then_waits_for_oldest() -> None:
    window = SlidingWindow(Limit("x", 3, 10.0, "test"), margin=0.0)
    for at in (0.0, 1.0, 2.0):
        assert window.next_allowed(at) == at
        window.record(at)
    assert window.next_allowed(2.5) == 10.0
    window.record(10.0)
    assert window.next_allowed(10.0) == 11.0


async def test_pacer_one_group_respects_chat_and_group_limits() -> None:
    clock = VirtualTime()
    pacer = Pacer(clock=clock, sleep=clock.sleep, margin=0.0)
    limits = [(TELEGRAM_OVERALL, "tg"), (TELEGRAM_PER_CHAT, "-100"), (TELEGRAM_PER_GROUP, "-100")]
    sent = []
    for _ in range(45):
        await pacer.acquire(limits)
        sent.append(clock.now)
    assert max_in_any_window(sent, 1.0) <= 1
    assert max_in_any_window(sent, 60.0) <= 20
    # 45 messages at 20 per minute: the 41st cannot go before two full minutes.
    assert sent[40] >= 120.0


async def test_pacer_many_chats_share_the_overall_limit() -> None:
    clock = VirtualTime()
    pacer = Pacer(clock=clock, sleep=clock.sleep, margin=0.0)

    async def send(chat: int) -> float:
        await pacer.acquire([(TELEGRAM_OVERALL, "tg"), (TELEGRAM_PER_CHAT, str(chat))])
        return clock.now

    sent = await asyncio.gather(*(send(chat) for chat in range(300)))
    assert max_in_any_window(list(sent), 1.0) <= 30


async def test_pacer_pause_holds_a_scope() -> None:
    clock = VirtualTime()
    pacer = Pacer(clock=clock, sleep=clock.sleep, margin=0.0)
    pacer.pause("telegram", 5.0)
    await pacer.acquire([], scopes=["discord"])
    assert clock.now == 0.0
    await pacer.acquire([], scopes=["telegram"])
    assert clock.now == pytest.approx(5.0)


@settings(max_examples=100, deadline=None)
@given(count=st.integers(1, 10), period=st.floats(0.5, 60), gaps=st.lists(
    st.floats(0, 3), min_size=1, max_size=60))
def test_sliding_window_property_never_exceeds_count(count: int, period: float,
                                                    gaps: list[float]) -> None:
    window = SlidingWindow(Limit("p", count, period, "test"), margin=0.0)
    now, sent = 0.0, []
    for gap in gaps:
        now = window.next_allowed(now + gap)
        window.record(now)
        sent.append(now)
    assert max_in_any_window(sent, period) <= count


def test_sliding_window_shared_limit_spaces_sends_evenly() -> None:
    window = SlidingWindow(Limit("shared", 4, 1.0, "test", shared=True), margin=0.0)
    spacing = 0.25
    window.record(0.0)
    assert window.next_allowed(0.0) == spacing
    assert window.next_allowed(0.4) == 0.4


def test_sliding_window_shared_late_wakeup_keeps_later_slots_on_the_grid() -> None:
    window = SlidingWindow(Limit("shared", 100, 1.0, "test", shared=True), margin=0.0)
    spacing = 0.01
    window.record(0.0)
    window.record(spacing + 0.001)  # the timer fired a millisecond late
    assert window.next_allowed(0.0) == pytest.approx(2 * spacing)


def test_sliding_window_shared_send_after_idle_starts_a_new_grid() -> None:
    window = SlidingWindow(Limit("shared", 100, 1.0, "test", shared=True), margin=0.0)
    spacing = 0.01
    window.record(0.0)
    window.record(7.0)
    assert window.next_allowed(7.0) == pytest.approx(7.0 + spacing)


@settings(max_examples=200, deadline=None)
@given(count=st.integers(1, 40), period=st.floats(0.1, 60.0),
       gaps=st.lists(st.floats(0.0, 2.0), min_size=1, max_size=120),
       late=st.lists(st.floats(0.0, 0.05), min_size=120, max_size=120))
def test_sliding_window_property_shared_late_wakeups_never_exceed_count(
        count: int, period: float, gaps: list[float], late: list[float]) -> None:
    window = SlidingWindow(Limit("p", count, period, "test", shared=True), margin=0.0)
    now, sent = 0.0, []
    for gap, delay in zip(gaps, late, strict=False):
        now = window.next_allowed(now + gap) + delay
        window.record(now)
        sent.append(now)
    assert max_in_any_window(sent, period) <= count


def test_sliding_window_forget_gives_the_slot_back() -> None:
    window = SlidingWindow(Limit("x", 1, 60.0, "test"), margin=0.0)
    window.record(5.0)
    assert window.next_allowed(6.0) == 65.0
    window.forget(5.0)
    window.forget(5.0)  # twice is harmless
    assert window.next_allowed(6.0) == 6.0


async def test_pacer_shared_bucket_serves_waiters_in_arrival_order() -> None:
    clock = VirtualTime()
    pacer = Pacer(clock=clock, sleep=clock.sleep, margin=0.0)
    order: list[int] = []

    async def send(chat: int) -> None:
        await pacer.acquire([(TELEGRAM_OVERALL, "tg"), (TELEGRAM_PER_CHAT, str(chat))])
        order.append(chat)

    await asyncio.gather(*(send(chat) for chat in range(60)))
    assert order == list(range(60))


async def test_pacer_release_lets_a_refused_send_retry_without_waiting_a_window() -> None:
    clock = VirtualTime()
    pacer = Pacer(clock=clock, sleep=clock.sleep, margin=0.0)
    group = [(TELEGRAM_PER_GROUP, "-100")]
    slots = [await pacer.acquire(group) for _ in range(20)]
    pacer.release(group, slots[-1])
    await pacer.acquire(group)
    assert clock.now == slots[-1]


async def test_pacer_forget_idle_drops_old_buckets_and_expired_pauses() -> None:
    clock = VirtualTime()
    pacer = Pacer(clock=clock, sleep=clock.sleep, margin=0.0)
    await pacer.acquire([(TELEGRAM_PER_CHAT, "old")])
    pacer.pause("telegram:old", 10.0)
    clock.now = 400.0
    await pacer.acquire([(TELEGRAM_PER_CHAT, "fresh")])
    assert pacer.forget_idle(older_than=300.0) == 1
    # The fresh chat's bucket survived: a second send to it still waits its second.
    assert pacer.delay([(TELEGRAM_PER_CHAT, "fresh")]) > 0
    assert pacer.delay([(TELEGRAM_PER_CHAT, "old")], scopes=["telegram:old"]) == 0


async def settle_sends(pacer: Pacer, clock: VirtualTime, limits: list[tuple[Limit, str]],
                      answers: list[float]) -> None:
    """Send once per answer time, each answered that many seconds after its slot."""
    for seconds in answers:
        slot = await pacer.acquire(limits)
        clock.now += seconds
        pacer.settled(limits, slot)


async def test_pacer_margin_until_enough_sends_answered_is_the_fixed_one() -> None:
    clock = VirtualTime()
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    limits = [(TELEGRAM_PER_CHAT, "42")]
    await settle_sends(pacer, clock, limits, [0.01] * (LATENESS_MIN_SAMPLES - 1))
    assert pacer.margin(TELEGRAM_PER_CHAT) == TELEGRAM_PER_CHAT.margin


async def test_pacer_margin_after_sends_answered_is_slowest_slot_to_answer() -> None:
    clock = VirtualTime()
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    limits = [(TELEGRAM_OVERALL, "tg"), (TELEGRAM_PER_CHAT, "42")]
    await settle_sends(pacer, clock, limits, [0.004, 0.011, 0.006] * LATENESS_MIN_SAMPLES)
    assert pacer.margin(TELEGRAM_PER_CHAT) == pytest.approx(0.011 + LATENESS_FLOOR)
    assert pacer.margin(TELEGRAM_OVERALL) == pytest.approx(0.011 + LATENESS_FLOOR)
    assert pacer.margin(TELEGRAM_PER_GROUP) == TELEGRAM_PER_GROUP.margin  # never used


async def test_pacer_slow_answers_widen_the_window_up_to_its_length() -> None:
    clock = VirtualTime()
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    limits = [(TELEGRAM_PER_CHAT, "42")]
    await settle_sends(pacer, clock, limits, [0.01, 0.41] * LATENESS_MIN_SAMPLES)
    slot = await pacer.acquire(limits)
    assert pacer.delay(limits) == pytest.approx(1.0 + 0.41 + LATENESS_FLOOR)
    pacer.release(limits, slot)
    await settle_sends(pacer, clock, limits, [5.0] * LATENESS_MIN_SAMPLES)
    assert pacer.margin(TELEGRAM_PER_CHAT) == TELEGRAM_PER_CHAT.period


async def test_pacer_stalled_answer_widens_the_margin_until_it_ages_out() -> None:
    clock = VirtualTime()
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    limits = [(TELEGRAM_OVERALL, "tg"), (TELEGRAM_PER_CHAT, "42")]
    # A request stalled before it left arrives late: the next windows must allow for it.
    await settle_sends(pacer, clock, limits, [0.003] * 30 + [0.4] + [0.005] * 30)
    assert pacer.margin(TELEGRAM_OVERALL) == pytest.approx(0.4 + LATENESS_FLOOR)
    assert pacer.margin(TELEGRAM_PER_CHAT) == pytest.approx(0.4 + LATENESS_FLOOR)
    await settle_sends(pacer, clock, limits, [0.005] * LATENESS_SAMPLES)
    assert pacer.margin(TELEGRAM_OVERALL) == pytest.approx(0.005 + LATENESS_FLOOR)


async def test_pacer_settled_after_parts_counts_from_the_last_part_slot() -> None:
    clock = VirtualTime()
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    limits = [(TELEGRAM_PER_CHAT, "42")]
    for _ in range(LATENESS_MIN_SAMPLES):
        first = await pacer.acquire(limits)
        await pacer.acquire(limits)  # the second part waits a whole window for its slot
        clock.now += 0.005
        pacer.settled(limits, first)
    await settle_sends(pacer, clock, limits, [0.001])
    assert pacer.margin(TELEGRAM_PER_CHAT) == pytest.approx(0.005 + LATENESS_FLOOR)
