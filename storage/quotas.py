"""Rolling 24 h quotas: what a user has used, what is left, and when it frees up.

The arithmetic is pure (a list of charges in, a status or a typed refusal out) so it can
be tested without a database; the two queries that feed it are at the bottom. Callers
run them inside a transaction that has locked the user (see ``users.lock``), which is
what makes check-and-reserve atomic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.errors import (
    QuotaExceededError,
    QuotaRefusedError,
    SongTooLongError,
    TooManyConcurrentJobsError,
    UserBannedError,
)
from storage.models import Job, Usage, User
from storage.records import ACTIVE_STATUS_VALUES, QuotaLimits, QuotaStatus, UserRecord

WINDOW = timedelta(hours=24)

_N = TypeVar("_N", int, float)


@dataclass(frozen=True)
class Charge:
    """One job's unrefunded charge inside the window."""

    charged_at: datetime
    songs: int
    audio_seconds: float
    job_id: int | None = None


def effective_limits(defaults: QuotaLimits, user: User) -> QuotaLimits:
    """The platform defaults with the user's overrides on top; admins are unlimited."""
    if user.is_admin:
        return QuotaLimits.unlimited()
    return QuotaLimits(
        songs_per_day=_pick(user.songs_per_day_override, defaults.songs_per_day),
        audio_minutes_per_day=_pick(
            user.audio_minutes_per_day_override, defaults.audio_minutes_per_day
        ),
        max_song_minutes=_pick(user.max_song_minutes_override, defaults.max_song_minutes),
        max_concurrent_jobs=_pick(user.max_concurrent_jobs_override, defaults.max_concurrent_jobs),
    )


def summarize(
    user: User,
    limits: QuotaLimits,
    charges: Sequence[Charge],
    active_jobs: int,
) -> QuotaStatus:
    """What ``user`` has used and has left, given the charges inside the window."""
    songs_used = sum(charge.songs for charge in charges)
    minutes_used = sum(charge.audio_seconds for charge in charges) / 60
    songs_left = None
    if limits.songs_per_day is not None:
        songs_left = max(0, limits.songs_per_day - songs_used)
    minutes_left = None
    if limits.audio_minutes_per_day is not None:
        minutes_left = max(0.0, limits.audio_minutes_per_day - minutes_used)
    oldest = min((charge.charged_at for charge in charges), default=None)
    return QuotaStatus(
        limits=limits,
        songs_used=songs_used,
        audio_minutes_used=minutes_used,
        songs_left=songs_left,
        audio_minutes_left=minutes_left,
        active_jobs=active_jobs,
        frees_at=oldest + WINDOW if oldest is not None else None,
        is_admin=user.is_admin,
        is_banned=user.is_banned,
    )


MIN_SONG_SECONDS = 1.0
"""The least audio time any song needs: before the download a song's length is unknown,
and a user with less than this left is refused without fetching a byte."""


def refusal(
    user: User | UserRecord,
    status: QuotaStatus,
    charges: Sequence[Charge],
    seconds: float | None = None,
    *,
    admitted: bool = False,
) -> QuotaRefusedError | None:
    """The first reason the user may not have this song now, or None: the one order of
    refusals, asked before the download (``seconds`` unknown), when the job is reserved
    and when an admitted song's decoded length turns out longer than charged.

    In order: banned; the song longer than the per-song limit (once its length is
    known); too many songs in progress; no songs left today; not enough audio minutes
    for the song (for one of unknown length: not :data:`MIN_SONG_SECONDS` left). A daily
    refusal says when enough of the window frees up for the song to fit, or None when
    waiting will not help.

    Args:
        user: who asks (named in a ban's refusal).
        status: :func:`summarize` of ``charges`` for the user's current row (flags and
            overrides as stored now).
        charges: the user's unrefunded charges inside the window.
        seconds: the song's length; None before the download.
        admitted: the song's job exists and holds its slot and its song (``charges``
            are the user's *other* charges): only the length-dependent checks apply,
            and a running song of a user banned since goes on.
    """
    limits = status.limits
    if status.is_banned and not admitted:
        return UserBannedError(platform=user.platform, platform_user_id=user.platform_user_id)
    if (
        seconds is not None
        and limits.max_song_minutes is not None
        and seconds > limits.max_song_minutes * 60
    ):
        return SongTooLongError(duration_seconds=seconds, max_seconds=limits.max_song_minutes * 60)
    if not admitted and (taken := _no_slot_or_song(status, charges)) is not None:
        return taken
    return _not_enough_minutes(status, charges, MIN_SONG_SECONDS if seconds is None else seconds)


def _no_slot_or_song(status: QuotaStatus, charges: Sequence[Charge]) -> QuotaRefusedError | None:
    limits = status.limits
    if limits.max_concurrent_jobs is not None and status.active_jobs >= limits.max_concurrent_jobs:
        return TooManyConcurrentJobsError(
            active=status.active_jobs, limit=limits.max_concurrent_jobs
        )
    if status.songs_left is not None and status.songs_left < 1:
        assert limits.songs_per_day is not None
        return QuotaExceededError(
            limit="songs_per_day",
            remaining=status.songs_left,
            frees_at=_frees_at(
                charges, lambda c: c.songs, status.songs_used + 1 - limits.songs_per_day
            ),
        )
    return None


def _not_enough_minutes(
    status: QuotaStatus, charges: Sequence[Charge], seconds: float
) -> QuotaExceededError | None:
    limits = status.limits
    if status.audio_minutes_left is None or seconds / 60 <= status.audio_minutes_left:
        return None
    assert limits.audio_minutes_per_day is not None
    excess_seconds = status.audio_minutes_used * 60 + seconds - limits.audio_minutes_per_day * 60
    return QuotaExceededError(
        limit="audio_minutes_per_day",
        remaining=round(status.audio_minutes_left, 2),
        frees_at=_frees_at(charges, lambda c: c.audio_seconds, excess_seconds),
    )


def _frees_at(
    charges: Sequence[Charge], amount: Callable[[Charge], float], needed: float
) -> datetime | None:
    """When enough of the oldest charges have left the window to free ``needed``.

    None when even an empty window would not be enough (a zero limit, or a song longer
    than the whole daily allowance): waiting will not help, so say so.
    """
    freed = 0.0
    for charge in sorted(charges, key=lambda c: c.charged_at):
        freed += amount(charge)
        if freed >= needed:
            return charge.charged_at + WINDOW
    return None


def _pick(override: _N | None, default: _N | None) -> _N | None:
    return override if override is not None else default


async def load_charges(session: AsyncSession, user_id: int, now: datetime) -> list[Charge]:
    """The user's unrefunded charges within the rolling window ending at ``now``."""
    rows = await session.execute(
        select(Usage.charged_at, Usage.songs, Usage.audio_seconds, Usage.job_id)
        .where(
            Usage.user_id == user_id,
            Usage.refunded_at.is_(None),
            Usage.charged_at > now - WINDOW,
        )
        .order_by(Usage.charged_at)
    )
    return [Charge(*row) for row in rows]


async def count_active_jobs(session: AsyncSession, user_id: int) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(Job)
        .where(Job.user_id == user_id, Job.status.in_(ACTIVE_STATUS_VALUES))
    )
    return int(count or 0)
