"""Karaoke buttons name a job by an opaque random token instead of its sequential id.

A forged button with another id told whether that job existed (issue 20). Each job gets
``control_token``: 9 random bytes in URL-safe base64 (12 characters), unique. Jobs from
before this revision get one too, but buttons already sent carry the old ``kc:<id>:...``
data, which the bot now refuses with "send the song again": old buttons stop working.

A plain ``ADD COLUMN`` and ``CREATE INDEX``, not batch mode: on SQLite batch mode copies
``jobs`` and would delete every ``usage`` row through ON DELETE CASCADE (see 0003).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

_TOKEN_BYTES = 9
"""12 characters once encoded, as ``storage.records.new_control_token`` makes them."""


def upgrade() -> None:
    op.add_column("jobs", sa.Column("control_token", sa.String(length=16), nullable=True))
    bind = op.get_bind()
    job_ids = bind.execute(sa.text("SELECT id FROM jobs")).scalars().all()
    for job_id in job_ids:
        bind.execute(
            sa.text("UPDATE jobs SET control_token = :token WHERE id = :id"),
            {"token": secrets.token_urlsafe(_TOKEN_BYTES), "id": job_id},
        )
    op.create_index("ix_jobs_control_token", "jobs", ["control_token"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_jobs_control_token", table_name="jobs")
    op.drop_column("jobs", "control_token")
