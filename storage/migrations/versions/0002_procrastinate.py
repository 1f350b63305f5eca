"""procrastinate 3.10.0's job queue schema (PostgreSQL only).

The distributed backend queues songs with procrastinate; this revision creates its
tables, types, functions and triggers from ``procrastinate_3.10.0.sql``, a byte-for-byte
copy of that release's ``procrastinate/sql/schema.sql`` kept next to the migrations.
The copy, not the installed library, is what runs: the revision works without
procrastinate installed and means the same thing after the library is upgraded. A new
procrastinate version gets its own revision applying that version's migration files
(see ``storage.queue_schema``).

SQLite databases get nothing: the local backend runs jobs in-process and has no queue.

Revision ID: 0002
Revises: 0001
Create Date: 2025-06-01
"""

from __future__ import annotations

from pathlib import Path

from alembic import op

from storage.queue_schema import split_sql_statements

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "procrastinate_3.10.0.sql"
SCHEMA_SHA256 = "c70ec4b400a60ad9592787653aae5ae77ae41bf801d56b5bd2712751a07f2009"
"""The copy's checksum; a test holds the file to it, so it can never be edited in place."""

# Everything the schema creates, in an order PostgreSQL can drop it: triggers before
# their functions, functions before the row types they return or take, tables before
# the enums their columns use. Indexes go with their tables; the plpgsql extension is
# PostgreSQL's own and stays.
TRIGGERS = (
    "procrastinate_jobs_notify_queue_job_inserted_v1",
    "procrastinate_jobs_notify_queue_job_aborted_v1",
    "procrastinate_trigger_status_events_update_v1",
    "procrastinate_trigger_status_events_insert_v1",
    "procrastinate_trigger_scheduled_events_v1",
    "procrastinate_trigger_abort_requested_events_v1",
    "procrastinate_trigger_delete_jobs_v1",
)
FUNCTIONS = (
    "procrastinate_defer_jobs_v1",
    "procrastinate_defer_periodic_job_v2",
    "procrastinate_fetch_job_v2",
    "procrastinate_finish_job_v1",
    "procrastinate_cancel_job_v1",
    "procrastinate_retry_job_v1",
    "procrastinate_retry_job_v2",
    "procrastinate_notify_queue_job_inserted_v1",
    "procrastinate_notify_queue_abort_job_v1",
    "procrastinate_trigger_function_status_events_insert_v1",
    "procrastinate_trigger_function_status_events_update_v1",
    "procrastinate_trigger_function_scheduled_events_v1",
    "procrastinate_trigger_abort_requested_events_procedure_v1",
    "procrastinate_unlink_periodic_defers_v1",
    "procrastinate_register_worker_v1",
    "procrastinate_unregister_worker_v1",
    "procrastinate_update_heartbeat_v1",
    "procrastinate_prune_stalled_workers_v1",
)
TABLES = (
    "procrastinate_events",
    "procrastinate_periodic_defers",
    "procrastinate_jobs",
    "procrastinate_workers",
)
TYPES = (
    "procrastinate_job_to_defer_v1",
    "procrastinate_job_event_type",
    "procrastinate_job_status",
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    # One statement at a time: asyncpg prepares what it runs, and a prepared statement
    # holds one command. Driver SQL, so nothing reads the script's colons as parameters.
    for statement in split_sql_statements(SCHEMA_FILE.read_text(encoding="utf-8")):
        bind.exec_driver_sql(statement)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    # No CASCADE: should anything of an operator's depend on the queue (a view, say),
    # the downgrade stops, in its transaction, instead of dropping it unasked.
    for trigger in TRIGGERS:
        bind.exec_driver_sql(f"DROP TRIGGER {trigger} ON procrastinate_jobs")
    for function in FUNCTIONS:
        bind.exec_driver_sql(f"DROP FUNCTION {function}")
    bind.exec_driver_sql(f"DROP TABLE {', '.join(TABLES)}")
    bind.exec_driver_sql(f"DROP TYPE {', '.join(TYPES)}")
