"""Users: who they are on which platform, their flags and their quota overrides."""

from __future__ import annotations

import math
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.errors import InvalidGrantError, InvalidUserRefError, UserNotFoundError
from storage.models import User
from storage.records import PLATFORMS, UserRecord, is_platform

MAX_PLATFORM_USER_ID_LENGTH = 64
MAX_DISPLAY_NAME_LENGTH = 255


def parse_user_ref(ref: str) -> tuple[str, str]:
    """Split ``PLATFORM:ID`` (as typed by an admin) into a checked platform and id.

    Raises:
        InvalidUserRefError: no colon, an unknown platform, or an empty or bad id.
    """
    platform, colon, platform_user_id = ref.strip().partition(":")
    if not colon:
        raise InvalidUserRefError(ref=ref, reason="expected PLATFORM:ID, e.g. telegram:12345")
    check_user_key(platform, platform_user_id, ref=ref)
    return platform, platform_user_id


def parse_admin_ref(ref: str) -> tuple[str, str]:
    """``PLATFORM:ID`` as an admin types it to look up, grant, ban or make admin.

    Stricter than :func:`parse_user_ref`: admin commands create a user they have not
    seen yet (to pre-ban or pre-grant), so an id the platform could never send
    (``telegram:abc``, a typo) must be refused as malformed instead of creating a user
    nobody can ever be.

    Raises:
        InvalidUserRefError: as :func:`parse_user_ref`, or an id that is not a number
            (both platforms number their users; Discord's are snowflakes).
    """
    platform, platform_user_id = parse_user_ref(ref)
    if not (platform_user_id.isascii() and platform_user_id.isdigit()):
        raise InvalidUserRefError(
            ref=ref, reason=f"a {platform} id is a number, e.g. {platform}:12345"
        )
    return platform, platform_user_id


def check_user_key(platform: str, platform_user_id: str, *, ref: str | None = None) -> None:
    """Raise :class:`InvalidUserRefError` unless platform and id can identify a user."""
    ref = ref if ref is not None else f"{platform}:{platform_user_id}"
    if not is_platform(platform):
        raise InvalidUserRefError(ref=ref, reason=_unknown_platform(platform))
    if not platform_user_id or len(platform_user_id) > MAX_PLATFORM_USER_ID_LENGTH:
        raise InvalidUserRefError(
            ref=ref, reason=f"the id must have 1 to {MAX_PLATFORM_USER_ID_LENGTH} characters"
        )
    if not platform_user_id.isprintable() or any(c.isspace() for c in platform_user_id):
        raise InvalidUserRefError(ref=ref, reason="the id must not contain spaces")


def _unknown_platform(platform: str) -> str:
    return f"unknown platform {platform!r} (expected {', '.join(PLATFORMS)})"


def to_record(user: User) -> UserRecord:
    platform = user.platform
    if not is_platform(platform):  # every row is written through check_user_key
        raise InvalidUserRefError(
            ref=f"{platform}:{user.platform_user_id}", reason=_unknown_platform(platform)
        )
    return UserRecord(
        id=user.id,
        platform=platform,
        platform_user_id=user.platform_user_id,
        display_name=user.display_name,
        first_seen=user.first_seen,
        last_seen=user.last_seen,
        is_banned=user.is_banned,
        is_admin=user.is_admin,
        songs_per_day_override=user.songs_per_day_override,
        audio_minutes_per_day_override=user.audio_minutes_per_day_override,
        max_song_minutes_override=user.max_song_minutes_override,
        max_concurrent_jobs_override=user.max_concurrent_jobs_override,
    )


async def find(session: AsyncSession, platform: str, platform_user_id: str) -> User | None:
    return await session.scalar(
        select(User).where(User.platform == platform, User.platform_user_id == platform_user_id)
    )


async def get(session: AsyncSession, platform: str, platform_user_id: str) -> User:
    user = await find(session, platform, platform_user_id)
    if user is None:
        raise UserNotFoundError(platform=platform, platform_user_id=platform_user_id)
    return user


async def find_or_create(
    session: AsyncSession, platform: str, platform_user_id: str, now: datetime
) -> User:
    """The user, created with an empty display name if never seen (seen times untouched)."""
    user = await find(session, platform, platform_user_id)
    return user if user is not None else await upsert(session, platform, platform_user_id, "", now)


async def load(session: AsyncSession, user: UserRecord, *, for_update: bool = False) -> User:
    """The current row of a user the caller already knows (flags may have changed)."""
    query = select(User).where(User.id == user.id).execution_options(populate_existing=True)
    row = await session.scalar(query.with_for_update() if for_update else query)
    if row is None:
        raise UserNotFoundError(platform=user.platform, platform_user_id=user.platform_user_id)
    return row


async def lock(session: AsyncSession, user: UserRecord) -> User:
    """Load a user and, on PostgreSQL, lock the row until the transaction ends.

    Everything that checks a user's quota and then writes starts here, so two requests
    from one user are decided one at a time. (SQLite gets this from ``BEGIN
    IMMEDIATE``; its compiler drops ``FOR UPDATE``.)
    """
    return await load(session, user, for_update=True)


async def upsert(
    session: AsyncSession, platform: str, platform_user_id: str, display_name: str, now: datetime
) -> User:
    """Create the user on first sight, else refresh the display name and last seen."""
    check_user_key(platform, platform_user_id)
    display_name = display_name[:MAX_DISPLAY_NAME_LENGTH]
    user = await find(session, platform, platform_user_id)
    if user is None:
        user = User(
            platform=platform,
            platform_user_id=platform_user_id,
            display_name=display_name,
            first_seen=now,
            last_seen=now,
            is_banned=False,
            is_admin=False,
        )
        try:
            # A savepoint, so that losing a race with another process creating the same
            # user (PostgreSQL) only undoes this insert and we can load theirs.
            async with session.begin_nested():
                session.add(user)
        except IntegrityError:
            user = await get(session, platform, platform_user_id)
        else:
            return user
    user.display_name = display_name or user.display_name
    user.last_seen = max(user.last_seen, now)
    return user


def apply_overrides(
    user: User,
    *,
    songs_per_day: int | None,
    audio_minutes_per_day: float | None,
    max_song_minutes: float | None,
    max_concurrent_jobs: int | None,
) -> None:
    """Set the given per-user overrides (``None`` leaves one unchanged).

    Raises:
        InvalidGrantError: a value is negative, not finite, or zero where zero makes no
            sense (maximum song length, concurrent jobs).
    """
    _check("songs", songs_per_day, minimum=0, integer=True)
    _check("minutes", audio_minutes_per_day, minimum=0)
    _check("max song minutes", max_song_minutes, minimum=0, strict=True)
    _check("concurrent jobs", max_concurrent_jobs, minimum=1, integer=True)
    if songs_per_day is not None:
        user.songs_per_day_override = songs_per_day
    if audio_minutes_per_day is not None:
        user.audio_minutes_per_day_override = float(audio_minutes_per_day)
    if max_song_minutes is not None:
        user.max_song_minutes_override = float(max_song_minutes)
    if max_concurrent_jobs is not None:
        user.max_concurrent_jobs_override = max_concurrent_jobs


def clear_overrides(user: User) -> None:
    user.songs_per_day_override = None
    user.audio_minutes_per_day_override = None
    user.max_song_minutes_override = None
    user.max_concurrent_jobs_override = None


def _check(
    field: str,
    value: float | None,
    *,
    minimum: float,
    strict: bool = False,
    integer: bool = False,
) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int if integer else int | float):
        kind = "a whole number" if integer else "a number"
        raise InvalidGrantError(field=field, value=value, reason=f"must be {kind}")
    if not math.isfinite(value):
        raise InvalidGrantError(field=field, value=value, reason="must be a finite number")
    if value < minimum or (strict and value == minimum):
        relation = "greater than" if strict else "at least"
        raise InvalidGrantError(field=field, value=value, reason=f"must be {relation} {minimum}")
