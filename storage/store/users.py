"""``store.users``: who the users are, and what an admin changes about them."""

from __future__ import annotations

from datetime import datetime

import storage.users as users
from storage.records import UserRecord
from storage.store.context import StoreContext


class Users:
    """Users seen on each platform, their flags (banned, admin) and quota overrides."""

    def __init__(self, context: StoreContext) -> None:
        self._context = context
        self._db = context.db

    async def upsert(
        self,
        platform: str,
        platform_user_id: str,
        display_name: str,
        *,
        now: datetime | None = None,
    ) -> UserRecord:
        """Record that a user was seen: create on first sight, else refresh name and time.

        Raises:
            InvalidUserRefError: unknown platform or unusable id.
        """
        async with self._db.write() as session:
            user = await users.upsert(
                session, platform, platform_user_id, display_name, self._context.now(now)
            )
            await session.flush()
            return users.to_record(user)

    async def get(self, platform: str, platform_user_id: str) -> UserRecord:
        """Raises: UserNotFoundError."""
        async with self._db.read() as session:
            return users.to_record(await users.get(session, platform, platform_user_id))

    async def find(self, ref: str) -> UserRecord:
        """Look a user up by ``PLATFORM:ID`` as typed by an admin.

        Raises:
            InvalidUserRefError: the reference is malformed.
            UserNotFoundError: no such user.
        """
        return await self.get(*users.parse_user_ref(ref))

    async def find_or_create(self, ref: str, *, now: datetime | None = None) -> UserRecord:
        """The user an admin names by ``PLATFORM:ID``, created if never seen.

        An operator may ban an abuser or grant a friend before they first write; the
        user is then created with an empty display name (filled in when they write).

        Raises:
            InvalidUserRefError: a malformed reference, e.g. ``telegram:abc``.
        """
        platform, platform_user_id = users.parse_admin_ref(ref)
        async with self._db.write() as session:
            user = await users.find_or_create(
                session, platform, platform_user_id, self._context.now(now)
            )
            await session.flush()
            return users.to_record(user)

    async def find_chat_user(self, ref: str) -> UserRecord:
        """Look a user up by ``PLATFORM:ID``, checked like :meth:`find_or_create`.

        Raises:
            InvalidUserRefError: a malformed reference, e.g. ``telegram:abc``.
            UserNotFoundError: no such user.
        """
        return await self.get(*users.parse_admin_ref(ref))

    async def grant(
        self,
        user: UserRecord,
        *,
        songs_per_day: int | None = None,
        audio_minutes_per_day: float | None = None,
        max_song_minutes: float | None = None,
        max_concurrent_jobs: int | None = None,
    ) -> UserRecord:
        """Override some of a user's limits (``None`` leaves a limit as it is).

        Raises:
            InvalidGrantError: a negative or otherwise impossible value; nothing changes.
        """
        async with self._db.write() as session:
            row = await users.lock(session, user)
            users.apply_overrides(
                row,
                songs_per_day=songs_per_day,
                audio_minutes_per_day=audio_minutes_per_day,
                max_song_minutes=max_song_minutes,
                max_concurrent_jobs=max_concurrent_jobs,
            )
            await session.flush()
            return users.to_record(row)

    async def reset_limits(self, user: UserRecord) -> UserRecord:
        """Drop all of a user's overrides, back to the platform defaults."""
        async with self._db.write() as session:
            row = await users.lock(session, user)
            users.clear_overrides(row)
            await session.flush()
            return users.to_record(row)

    async def set_banned(self, user: UserRecord, banned: bool) -> UserRecord:
        """Ban or unban; a banned user's new jobs are refused (running ones go on)."""
        async with self._db.write() as session:
            row = await users.lock(session, user)
            row.is_banned = banned
            await session.flush()
            return users.to_record(row)

    async def set_admin(self, user: UserRecord, admin: bool) -> UserRecord:
        """Grant or revoke admin rights (admins have no quota limits)."""
        async with self._db.write() as session:
            row = await users.lock(session, user)
            row.is_admin = admin
            await session.flush()
            return users.to_record(row)
