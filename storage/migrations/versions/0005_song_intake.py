"""Songs accepted before their job exists: the ``song_intake`` table (``storage.intake``).

A song is recorded here when the bot accepts it, before the chat platform's update is
confirmed, and removed when its job is reserved or the song is refused; a row left at
start is a song a crash interrupted while it downloaded or waited for its header check.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "song_intake",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=True),
        sa.Column("guild_id", sa.String(length=64), nullable=True),
        sa.Column("channel_id", sa.String(length=64), nullable=True),
        sa.Column("message_id", sa.String(length=64), nullable=True),
        sa.Column("file_ref", sa.String(length=2048), nullable=False),
        sa.Column("file_unique_id", sa.String(length=128), nullable=True),
        sa.Column("file_name", sa.String(length=255), nullable=True),
        sa.Column("declared_size", sa.BigInteger(), nullable=True),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("progress_message", sa.String(length=64), nullable=True),
        sa.Column("holder", sa.String(length=64), nullable=True),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_song_intake_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_song_intake")),
    )
    op.create_index(op.f("ix_song_intake_holder"), "song_intake", ["holder"])


def downgrade() -> None:
    op.drop_index(op.f("ix_song_intake_holder"), table_name="song_intake")
    op.drop_table("song_intake")
