"""``store.intake``: songs accepted from a chat before their job exists (see
:mod:`storage.intake` for why they are journalled)."""

from __future__ import annotations

from datetime import datetime

import storage.intake as intake
import storage.users as users
from storage.intake import IntakeRecord, IntakeRequest
from storage.store.context import StoreContext


class Intake:
    """The intake journal: accept a song, note its progress message, forget it, list
    what a previous process left."""

    def __init__(self, context: StoreContext) -> None:
        self._context = context
        self._db = context.db

    async def accept(
        self,
        platform: str,
        platform_user_id: str,
        display_name: str,
        request: IntakeRequest,
        *,
        now: datetime | None = None,
    ) -> IntakeRecord:
        """Record a song the bot accepted, before the platform is told it arrived; the
        user is recorded as seen (as :meth:`storage.store.users.Users.upsert`) in the
        same short transaction, since the platform waits for both.

        Raises:
            IntakeExistsError: the platform delivered the same message again.
            InvalidUserRefError: unknown platform or unusable id.
        """
        now = self._context.now(now)
        async with self._db.write() as session:
            user = await users.upsert(session, platform, platform_user_id, display_name, now)
            await session.flush()
            return await intake.accept(session, user, request, now)

    async def note_progress(self, intake_id: int, message_ref: str) -> None:
        """Remember the id of the message that shows an accepted song's progress."""
        async with self._db.write() as session:
            await intake.note_progress_message(session, intake_id, message_ref)

    async def forget(self, intake_id: int) -> bool:
        """Forget an accepted song that was refused or given up; False if already gone."""
        async with self._db.write() as session:
            return await intake.remove(session, intake_id)

    async def pending(self, *, holder: str | None = None) -> list[IntakeRecord]:
        """The songs a previous process (``holder``) accepted and left without a job."""
        async with self._db.read() as session:
            return await intake.pending(session, holder=holder)
