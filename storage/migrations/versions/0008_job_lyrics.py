"""What a job's karaoke video shows, kept with the job (issue 24).

``job_lyrics`` holds one row per job: its song's title and artist as delivered (the
video's title card, and what the lyrics service is asked), and the lyrics its tags
carried, that its user sent or that the service found, with where they came from, so a
second press of "Lyrics video" (or a key change on a video) neither asks nor looks up
again. A new table rather than columns of ``jobs``: it is written once the job is done
and dropped by retention with the stems, long before the job's record.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "job_lyrics",
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=True),
        sa.Column("artist", sa.String(length=255), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=True),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "source IN ('tags', 'user', 'lrclib')", name=op.f("ck_job_lyrics_source")
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_lyrics_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_job_lyrics")),
    )
    op.create_index(op.f("ix_job_lyrics_stored_at"), "job_lyrics", ["stored_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_job_lyrics_stored_at"), table_name="job_lyrics")
    op.drop_table("job_lyrics")
