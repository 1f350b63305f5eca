"""The per-user rate limiter, driven by a fake clock."""

from __future__ import annotations

import pytest

from bot.chat.conversation.ratelimit import RateLimiter
from bot.settings import RateLimitSettings


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def limiter(clock) -> RateLimiter:
    # 20 per minute = one token every 3 s; 5 at once.
    settings = RateLimitSettings(requests_per_minute=20, burst=5)
    return RateLimiter.from_settings(settings, clock=clock)


def test_a_burst_is_allowed_then_the_average_applies(limiter, clock):
    assert all(limiter.check("telegram:1").allowed for _ in range(5))
    refused = limiter.check("telegram:1")
    assert not refused.allowed
    assert refused.retry_after_seconds == pytest.approx(3.0)
    clock.advance(3.0)
    assert limiter.check("telegram:1").allowed
    assert not limiter.check("telegram:1").allowed


def test_a_flooding_user_is_told_once_per_minute(limiter, clock):
    for _ in range(5):
        limiter.check("telegram:1")
    decisions = []
    for _ in range(120):  # two spam messages a second for a minute
        decisions.append(limiter.check("telegram:1"))
        clock.advance(0.5)
    notices = [decision for decision in decisions if decision.notify]
    assert len(notices) == 1 and decisions[0].notify
    assert notices[0].notice() == "Slow down a little: try again in 3 s."
    assert sum(decision.allowed for decision in decisions) == 19  # at 3, 6 ... 57 s
    assert not any(decision.notify for decision in decisions if decision.allowed)
    # A minute after the notice, the next refusal is explained again.
    assert limiter.check("telegram:1").allowed  # t = 60 s: the twentieth token
    assert limiter.check("telegram:1").notify


def test_users_are_independent(limiter):
    for _ in range(6):
        limiter.check("telegram:1")
    assert limiter.check("telegram:2").allowed
    assert limiter.check("discord:1").allowed  # same id, other platform


def test_idle_users_are_forgotten(limiter, clock):
    for user in range(1000):
        limiter.check(f"telegram:{user}")
    assert len(limiter) == 1000
    clock.advance(61)  # buckets full again and no notice pending: nothing to remember
    limiter.check("telegram:new")
    assert len(limiter) == 1


def test_a_refused_user_is_remembered_while_the_notice_counts(limiter, clock):
    for _ in range(6):
        limiter.check("telegram:1")  # the sixth is refused and noticed
    clock.advance(30)  # bucket full again, but a notice was sent 30 s ago
    limiter.check("telegram:2")
    assert len(limiter) == 2


def test_memory_is_capped(clock):
    limiter = RateLimiter(requests_per_minute=20, burst=5, clock=clock, max_users=100)
    for user in range(250):
        limiter.check(f"telegram:{user}")
    assert len(limiter) == 100
    assert limiter.check("telegram:249").allowed  # the most recent users are kept


def test_a_backwards_clock_does_not_grant_tokens(limiter, clock):
    for _ in range(5):
        limiter.check("telegram:1")
    clock.advance(-100)
    assert not limiter.check("telegram:1").allowed


@pytest.mark.parametrize(("rpm", "burst"), [(0, 5), (20, 0)])
def test_invalid_limits_are_refused(rpm, burst):
    with pytest.raises(ValueError):
        RateLimiter(requests_per_minute=rpm, burst=burst)
