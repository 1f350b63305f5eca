"""What a job needs when workers on other hosts run it and front-ends deliver it.

* ``attempt``: how many times a worker started the job (a worker that dies mid-song
  leaves it to be retried, and the count is what stops a song that kills every worker);
* ``queue_job_id``: the procrastinate job that carries it, to cancel or inspect it;
* ``delivered_by`` and ``delivery_lease_until``: which front-end process sends the
  result to the chat, and until when its claim holds unless renewed, so another
  front-end can take over the jobs of one that died.

Both backends get the columns, so the ORM model is the same everywhere.

Revision ID: 0003
Revises: 0002
Create Date: 2025-06-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        # The server default fills the rows of existing jobs (none ever retried).
        batch.add_column(sa.Column("attempt", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("queue_job_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("delivered_by", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column("delivery_lease_until", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    # Not batch mode: on SQLite it would copy ``jobs`` to a new table and drop the old
    # one, and with foreign keys on, dropping ``jobs`` deletes every ``usage`` row through
    # ON DELETE CASCADE. SQLite (3.35 and later) drops these plain columns in place.
    for column in ("delivery_lease_until", "delivered_by", "queue_job_id", "attempt"):
        op.drop_column("jobs", column)
