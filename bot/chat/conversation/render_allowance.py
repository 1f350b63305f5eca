"""Per-user daily allowance of re-rendered audio, counted in seconds of audio.

Re-renders (the karaoke-control buttons) cost no song from the quota: a key change is
seconds of ffmpeg, not minutes of the model. Seconds of ffmpeg are still not free, and
the per-user rate limit (``bot.chat.conversation.ratelimit``, presses per minute) cannot tell a
20-second song from a 15-minute one. So besides the rate, each user may have
``rate_limit.render_audio_minutes_per_day`` of audio re-rendered in any rolling 24 hours
(issue 20). Admins are exempt (the caller checks).

A render's cost is the length of what it wrote (the song at its new tempo). It is
reserved from the song's known length before the render starts, so five presses at once
cannot all slip under the limit, and settled to what the render actually wrote once it
finishes (nothing for a failed or refused one). A cache hit (settings pressed before)
is looked up first and costs nothing, even with the allowance used up: it costs no CPU.
A user who has used nothing yet may always render one song, even one longer than the
whole allowance, so a small allowance never locks anyone out.

Kept in memory, not in the database: a restart forgets every user's use, which only
ever errs in the user's favour, and it keeps a button press free of database writes.
Memory stays bounded like the rate limiter's: expired and zero charges are dropped, a
user with nothing left in the window is forgotten, and past :data:`MAX_TRACKED_USERS`
the least recently seen users are forgotten (they start afresh).
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from bot.settings import RateLimitSettings

WINDOW_SECONDS = 24 * 3600.0
MAX_TRACKED_USERS = 100_000


class RenderAllowanceUsedError(Exception):
    """The user's re-rendered audio in the last 24 h leaves no room for this render."""

    def __init__(self, *, minutes_per_day: float, retry_after_seconds: float) -> None:
        self.minutes_per_day = minutes_per_day
        self.retry_after_seconds = retry_after_seconds
        super().__init__(
            f"render allowance of {minutes_per_day:g} min a day used; "
            f"room again in {retry_after_seconds:.0f} s"
        )


@dataclass(eq=False)
class RenderCharge:
    """Seconds of audio charged to one user at one moment; settled after the render."""

    at: float
    seconds: float

    def settle(self, seconds: float) -> None:
        """What the render actually cost: its length, or 0 for a cache hit or a failure."""
        self.seconds = max(0.0, seconds)


class RenderAllowance:
    """Rolling 24-hour windows of re-rendered seconds, keyed by user (``"telegram:42"``);
    not thread-safe (one event loop)."""

    def __init__(
        self,
        *,
        seconds_per_day: float,
        clock: Callable[[], float] = time.monotonic,
        window_seconds: float = WINDOW_SECONDS,
        max_users: int = MAX_TRACKED_USERS,
    ) -> None:
        if seconds_per_day <= 0:
            raise ValueError("seconds_per_day must be > 0")
        self._limit = seconds_per_day
        self._clock = clock
        self._window = window_seconds
        self._max_users = max_users
        self._charges: OrderedDict[str, deque[RenderCharge]] = OrderedDict()

    @classmethod
    def from_settings(
        cls, settings: RateLimitSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> RenderAllowance:
        return cls(seconds_per_day=settings.render_audio_minutes_per_day * 60, clock=clock)

    def __len__(self) -> int:
        """Users currently remembered (for tests)."""
        return len(self._charges)

    def used(self, user_ref: str) -> float:
        """Seconds charged to ``user_ref`` within the window."""
        now = self._clock()
        charges = self._charges.get(user_ref, ())
        return sum(c.seconds for c in charges if now - c.at < self._window)

    def reserve(self, user_ref: str, seconds: float) -> RenderCharge:
        """Charge ``seconds`` to ``user_ref`` now; settle the charge once rendered.

        Raises:
            RenderAllowanceUsedError: the charge does not fit in the window (with when
                it will).
        """
        now = self._clock()
        self._forget_idle(now)
        charges = self._current(user_ref, now)
        used = sum(charge.seconds for charge in charges)
        if used > 0 and used + seconds > self._limit:
            raise RenderAllowanceUsedError(
                minutes_per_day=self._limit / 60,
                retry_after_seconds=self._room_at(charges, used, seconds) - now,
            )
        charge = RenderCharge(now, max(0.0, seconds))
        charges.append(charge)
        self._charges[user_ref] = charges  # most recently seen goes last
        self._forget_least_recent()
        return charge

    def _current(self, user_ref: str, now: float) -> deque[RenderCharge]:
        """The user's charges within the window (expired and zero ones dropped); a user
        with none left is forgotten."""
        charges = self._charges.pop(user_ref, deque())
        kept = deque(c for c in charges if c.seconds > 0 and now - c.at < self._window)
        if kept:
            self._charges[user_ref] = kept
        return kept

    def _room_at(self, charges: deque[RenderCharge], used: float, seconds: float) -> float:
        """When enough of the oldest charges expire for ``seconds`` more to fit."""
        for charge in charges:
            used -= charge.seconds
            if used <= 0 or used + seconds <= self._limit:
                return charge.at + self._window
        raise AssertionError("unreachable: with every charge expired, nothing is used")

    def _forget_idle(self, now: float) -> None:
        # Users are ordered by their latest charge, so those with nothing left in the
        # window are all at the front.
        while self._charges:
            user_ref, charges = next(iter(self._charges.items()))
            if charges and now - charges[-1].at < self._window:
                return
            del self._charges[user_ref]

    def _forget_least_recent(self) -> None:
        while len(self._charges) > self._max_users:
            self._charges.popitem(last=False)
