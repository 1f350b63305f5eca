"""The daily allowance of re-rendered audio: rolling 24 hours per user, reserved before a
render and settled at what it wrote, bounded in memory."""

from __future__ import annotations

import pytest

from bot.chat.conversation.render_allowance import (
    WINDOW_SECONDS,
    RenderAllowance,
    RenderAllowanceUsedError,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_renders_fit_until_the_allowance_is_used_then_it_says_when_room_comes():
    clock = Clock()
    allowance = RenderAllowance(seconds_per_day=600, clock=clock)
    allowance.reserve("telegram:1", 240)
    clock.now += 3600
    allowance.reserve("telegram:1", 240)
    clock.now += 60
    with pytest.raises(RenderAllowanceUsedError) as refused:
        allowance.reserve("telegram:1", 240)  # 720 > 600
    # Room comes when the first render leaves the window, 23 h after it.
    assert refused.value.retry_after_seconds == pytest.approx(WINDOW_SECONDS - 3660)
    assert refused.value.minutes_per_day == 10
    assert allowance.used("telegram:1") == 480
    allowance.reserve("telegram:2", 240)  # others are not affected
    clock.now += refused.value.retry_after_seconds
    allowance.reserve("telegram:1", 240)
    assert allowance.used("telegram:1") == 480


def test_a_charge_settles_at_what_the_render_wrote_and_a_failure_costs_nothing():
    allowance = RenderAllowance(seconds_per_day=600, clock=Clock())
    slower = allowance.reserve("telegram:1", 400)
    slower.settle(444.4)  # the song at 90 %: longer than reserved
    failed = allowance.reserve("telegram:1", 150)
    failed.settle(0)
    assert allowance.used("telegram:1") == pytest.approx(444.4)
    with pytest.raises(RenderAllowanceUsedError):
        allowance.reserve("telegram:1", 200)


def test_presses_at_once_cannot_all_slip_under_the_limit():
    allowance = RenderAllowance(seconds_per_day=600, clock=Clock())
    granted = []
    for _ in range(5):  # five presses before any render finished
        try:
            granted.append(allowance.reserve("telegram:1", 240))
        except RenderAllowanceUsedError:
            pass
    assert len(granted) == 2


def test_a_song_longer_than_the_allowance_can_still_be_rendered_once():
    allowance = RenderAllowance(seconds_per_day=60, clock=Clock())
    allowance.reserve("telegram:1", 900)
    with pytest.raises(RenderAllowanceUsedError):
        allowance.reserve("telegram:1", 1)


def test_memory_stays_bounded():
    clock = Clock()
    allowance = RenderAllowance(seconds_per_day=600, clock=clock, max_users=100)
    for user in range(1000):
        allowance.reserve(f"telegram:{user}", 10)
    assert len(allowance) == 100  # the least recently seen were forgotten
    clock.now += WINDOW_SECONDS
    allowance.reserve("telegram:new", 10)
    assert len(allowance) == 1  # users with nothing left in the window are forgotten
