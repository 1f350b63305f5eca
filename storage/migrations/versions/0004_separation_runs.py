"""The run ledger of the distributed backend (PostgreSQL only): see ``bot.distributed.runs``.

One row per queued job: the caller's job id, the current attempt (the fence that rejects
a presumed-dead worker's late result), which worker runs it, and the outcome it recorded.
SQLite databases get nothing: the local backend has no queue.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE TABLE separation_runs (
            queue_job_id bigint PRIMARY KEY,
            job_id varchar(64) NOT NULL,
            attempt integer NOT NULL DEFAULT 0,
            worker varchar(128),
            started_at timestamp with time zone,
            outcome text,
            finished_at timestamp with time zone
        )
        """
    )
    op.execute("CREATE INDEX ix_separation_runs_job_id ON separation_runs (job_id)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TABLE separation_runs")
