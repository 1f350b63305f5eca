"""The intake journal: songs accepted from a chat whose job does not exist yet.

Between "Downloading your song..." and the job's row (``storage.jobs.reserve``) a song is
downloaded and its header checked, and in a burst it waits for a slot to do either. The
chat platform does not send the message again once the bot has confirmed it (Telegram
confirms an update with the next ``getUpdates``), so a crash in that window would lose
the song silently. The bot records each song here before confirming it; at the next
start every row left is either resumed from the platform's file reference or reported to
its user as lost.

A separate table rather than an early job row: a job carries its upload's hash, length
and charge from the moment it exists, and every active job counts against its user's
concurrency limit; a song that was never downloaded has none of these, and must never
be charged or counted. The row goes away in the same transaction that reserves the job
(so a crash never leaves both), or when the song is refused or given up.

Every function runs inside a transaction opened by the caller (``storage.store.intake``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

import storage.users as users
from storage.errors import IntakeExistsError, InvalidIntakeError
from storage.models import SongIntake, User, clip_to_column
from storage.records import ChatRef, UserRecord

MAX_FILE_REF_LENGTH = 2048  # song_intake.file_ref
MAX_HOLDER_LENGTH = 64  # song_intake.holder


@dataclass(frozen=True)
class IntakeRequest:
    """What the bot knows about a song when it accepts it (nothing is downloaded yet)."""

    chat: ChatRef
    file_ref: str
    """What the platform needs to hand the file out again: a Telegram ``file_id``, a
    Discord attachment URL."""
    file_unique_id: str | None = None
    file_name: str | None = None
    declared_size: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    """What the user asked for (stem mode, format, controls) and the platform's hints."""
    holder: str | None = None
    """The distributed front-end accepting it; None where one process does everything."""

    def __post_init__(self) -> None:
        if not 0 < len(self.file_ref) <= MAX_FILE_REF_LENGTH:
            raise InvalidIntakeError(f"file_ref must have 1 to {MAX_FILE_REF_LENGTH} characters")
        if self.holder is not None and not 0 < len(self.holder) <= MAX_HOLDER_LENGTH:
            raise InvalidIntakeError(f"holder must have 1 to {MAX_HOLDER_LENGTH} characters")


@dataclass(frozen=True)
class IntakeRecord:
    """An accepted song without a job, as the journal keeps it."""

    id: int
    user: UserRecord
    chat: ChatRef
    file_ref: str
    file_unique_id: str | None
    file_name: str | None
    declared_size: int | None
    options: dict[str, Any]
    progress_message: str | None
    """The id of the message that shows the song's progress, once it was sent."""
    holder: str | None
    accepted_at: datetime


async def accept(
    session: AsyncSession, row: User, request: IntakeRequest, now: datetime
) -> IntakeRecord:
    """Record an accepted song of the user ``row``.

    Raises:
        IntakeExistsError: the same message brought the same file before and is still on
            record: a platform's second delivery, which must not make a second song.
    """
    if request.chat.message_id is not None:
        existing = await session.scalar(
            select(SongIntake.id).where(
                SongIntake.user_id == row.id,
                SongIntake.chat_id == request.chat.chat_id,
                SongIntake.channel_id == request.chat.channel_id,
                SongIntake.message_id == request.chat.message_id,
                SongIntake.file_ref == request.file_ref,
            )
        )
        if existing is not None:
            raise IntakeExistsError(intake_id=existing)
    intake = SongIntake(
        user_id=row.id,
        chat_id=request.chat.chat_id,
        guild_id=request.chat.guild_id,
        channel_id=request.chat.channel_id,
        message_id=request.chat.message_id,
        file_ref=request.file_ref,
        file_unique_id=clip_to_column(request.file_unique_id or None, SongIntake.file_unique_id),
        file_name=clip_to_column(request.file_name or None, SongIntake.file_name),
        declared_size=request.declared_size,
        options=dict(request.options),
        holder=request.holder,
        accepted_at=now,
    )
    session.add(intake)
    await session.flush()
    return _to_record(intake, row)


async def note_progress_message(session: AsyncSession, intake_id: int, ref: str) -> None:
    """Remember the message that shows the song's progress (to end it after a crash)."""
    await session.execute(
        update(SongIntake)
        .where(SongIntake.id == intake_id)
        .values(progress_message=ref[:64])
        .execution_options(synchronize_session=False)
    )


async def remove(session: AsyncSession, intake_id: int) -> bool:
    """Forget an accepted song (its job exists, or it was refused or given up).

    Returns:
        Whether the row was still there: recovery and the song's own task may both try.
    """
    result = await session.execute(
        delete(SongIntake)
        .where(SongIntake.id == intake_id)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


async def pending(session: AsyncSession, *, holder: str | None) -> list[IntakeRecord]:
    """The songs ``holder`` accepted and has no job for, oldest first."""
    condition = SongIntake.holder.is_(None) if holder is None else SongIntake.holder == holder
    rows = await session.execute(
        select(SongIntake, User)
        .join(User, User.id == SongIntake.user_id)
        .where(condition)
        .order_by(SongIntake.id)
    )
    return [_to_record(intake, user) for intake, user in rows.all()]


def _to_record(intake: SongIntake, user: User) -> IntakeRecord:
    return IntakeRecord(
        id=intake.id,
        user=users.to_record(user),
        chat=ChatRef(
            chat_id=intake.chat_id,
            guild_id=intake.guild_id,
            channel_id=intake.channel_id,
            message_id=intake.message_id,
        ),
        file_ref=intake.file_ref,
        file_unique_id=intake.file_unique_id,
        file_name=intake.file_name,
        declared_size=intake.declared_size,
        options=dict(intake.options),
        progress_message=intake.progress_message,
        holder=intake.holder,
        accepted_at=intake.accepted_at,
    )
