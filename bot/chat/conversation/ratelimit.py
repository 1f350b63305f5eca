"""Per-user rate limiting for chat messages, the same on every platform.

A token bucket per user: ``burst`` requests at once, refilled at
``requests_per_minute``. It runs before anything costs work (a database query, a
download), so a flooding user cannot slow the bot down for others.

A refusal should be explained, but a reply to every spam message would make the bot
flood the chat on the user's behalf (and hit the platform's own send limits). So at
most one "slow down" notice goes to a user per :data:`NOTICE_INTERVAL_SECONDS`; the other
refused messages are dropped silently.

Memory stays bounded: a user whose bucket has refilled and who was not told anything
recently is in the same state as a user never seen, so the entry is forgotten.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from bot.chat.conversation import messages
from bot.settings import RateLimitSettings

NOTICE_INTERVAL_SECONDS = 60.0
MAX_TRACKED_USERS = 100_000
"""Hard cap; past it the least recently seen users are forgotten (they get a full bucket)."""


@dataclass(frozen=True)
class RateDecision:
    """What to do with one incoming request."""

    allowed: bool
    notify: bool
    """Refused and the user has not been told recently: send :meth:`notice` once."""
    retry_after_seconds: float
    """0 when allowed; otherwise when the next request will be accepted."""

    def notice(self) -> str:
        """The one message a refused user gets."""
        return messages.rate_limited(self.retry_after_seconds)


@dataclass
class _Bucket:
    tokens: float
    updated: float
    noticed: float | None = None


class RateLimiter:
    """Token buckets keyed by user (e.g. ``"telegram:42"``); not thread-safe (one event loop)."""

    def __init__(
        self,
        *,
        requests_per_minute: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        notice_interval_seconds: float = NOTICE_INTERVAL_SECONDS,
        max_users: int = MAX_TRACKED_USERS,
    ) -> None:
        if requests_per_minute <= 0 or burst < 1:
            raise ValueError("requests_per_minute must be > 0 and burst >= 1")
        self._rate = requests_per_minute / 60.0
        self._burst = float(burst)
        self._clock = clock
        self._notice_interval = notice_interval_seconds
        self._max_users = max_users
        # A user is forgettable once both the bucket is full and the notice has expired.
        self._idle_after = max(self._burst / self._rate, notice_interval_seconds)
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    @classmethod
    def from_settings(
        cls, settings: RateLimitSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> RateLimiter:
        return cls(
            requests_per_minute=settings.requests_per_minute, burst=settings.burst, clock=clock
        )

    def __len__(self) -> int:
        """Users currently remembered (for tests and a debug metric)."""
        return len(self._buckets)

    def check(self, user_ref: str) -> RateDecision:
        """Take one token for ``user_ref`` if there is one, and say whether to reply."""
        now = self._clock()
        self._forget_idle(now)
        bucket = self._buckets.pop(user_ref, None)
        if bucket is None:
            bucket = _Bucket(tokens=self._burst, updated=now)
        else:
            elapsed = max(now - bucket.updated, 0.0)
            bucket.tokens = min(self._burst, bucket.tokens + elapsed * self._rate)
            bucket.updated = now
        self._buckets[user_ref] = bucket  # most recently seen goes last
        if bucket.tokens >= 1.0 - 1e-9:  # 3 s x (20/60 per s) is 0.999... in floats
            bucket.tokens = max(bucket.tokens - 1.0, 0.0)
            return RateDecision(allowed=True, notify=False, retry_after_seconds=0.0)
        retry_after = (1.0 - bucket.tokens) / self._rate
        notify = bucket.noticed is None or now - bucket.noticed >= self._notice_interval
        if notify:
            bucket.noticed = now
        return RateDecision(allowed=False, notify=notify, retry_after_seconds=retry_after)

    def _forget_idle(self, now: float) -> None:
        # Buckets are ordered by last use, so the idle ones are all at the front.
        while self._buckets:
            key, oldest = next(iter(self._buckets.items()))
            if now - oldest.updated < self._idle_after and len(self._buckets) < self._max_users:
                return
            del self._buckets[key]
