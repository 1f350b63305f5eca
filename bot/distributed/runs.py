"""The ledger of distributed runs: which attempt of a queued job is current, and how it ended.

procrastinate moves a job between states; it does not fence a worker that was presumed
dead (its heartbeat stopped) but is in fact alive and finishes later, after the job was
handed to another worker. This table is the fence. Each start of a job takes the next
attempt number; a worker may record an outcome only for the attempt it started, and only
once. A late writer's outcome is therefore rejected, and the result a front-end delivers
is always the current attempt's.

The SQL runs through the queue's own connection pool (psycopg, ``%(name)s`` parameters),
so a worker needs no second database driver: callers pass anything with
``execute_query_all_async(query, **params) -> list[dict]`` (procrastinate's connector).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

TABLE = "separation_runs"


class QueryRunner(Protocol):
    async def execute_query_all_async(
        self, query: str, **arguments: Any
    ) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class RunState:
    queue_job_id: int
    job_id: str
    """The caller's job id (the bot's job row, or a CLI run's random id)."""
    attempt: int
    """How many times a worker started the job (0: not yet)."""
    worker: str | None
    outcome: dict[str, Any] | None
    """The current attempt's outcome as the worker recorded it; None while it runs."""


_REGISTER = f"""
INSERT INTO {TABLE} (queue_job_id, job_id, attempt) VALUES (%(queue_job_id)s, %(job_id)s, 0)
ON CONFLICT (queue_job_id) DO NOTHING
RETURNING queue_job_id
"""

_START = f"""
INSERT INTO {TABLE} AS runs (queue_job_id, job_id, attempt, worker, started_at)
VALUES (%(queue_job_id)s, %(job_id)s, 1, %(worker)s, now())
ON CONFLICT (queue_job_id) DO UPDATE
   SET attempt = runs.attempt + 1, worker = EXCLUDED.worker, started_at = now()
 WHERE runs.outcome IS NULL
RETURNING attempt
"""

_RECORD = f"""
UPDATE {TABLE}
   SET outcome = %(outcome)s, finished_at = now()
 WHERE queue_job_id = %(queue_job_id)s AND attempt = %(attempt)s AND outcome IS NULL
RETURNING queue_job_id
"""

_COLUMNS = "queue_job_id, job_id, attempt, worker, outcome"
_READ = f"SELECT {_COLUMNS} FROM {TABLE} WHERE queue_job_id = ANY(%(ids)s)"
_FIND = (
    f"SELECT {_COLUMNS} FROM {TABLE} WHERE job_id = %(job_id)s ORDER BY queue_job_id DESC LIMIT 1"
)

_FORGET = f"DELETE FROM {TABLE} WHERE queue_job_id = %(queue_job_id)s RETURNING queue_job_id"


class RunLedger:
    """Attempts and outcomes of queued jobs (see the module docstring)."""

    def __init__(self, runner: QueryRunner) -> None:
        self._runner = runner

    async def register(self, queue_job_id: int, job_id: str) -> None:
        """Remember which caller's job a queued job is (done by the front-end that
        deferred it, so a restarted front-end finds the job by its own id)."""
        await self._runner.execute_query_all_async(
            _REGISTER, queue_job_id=queue_job_id, job_id=job_id
        )

    async def find(self, job_id: str) -> RunState | None:
        """The latest queued job of a caller's job, if any."""
        rows = await self._runner.execute_query_all_async(_FIND, job_id=job_id)
        return _state(rows[0]) if rows else None

    async def start_attempt(self, queue_job_id: int, job_id: str, worker: str) -> int | None:
        """Take the next attempt of a job; None when an earlier attempt already recorded
        its outcome (the worker died between recording it and telling the queue)."""
        rows = await self._runner.execute_query_all_async(
            _START, queue_job_id=queue_job_id, job_id=job_id, worker=worker
        )
        return int(rows[0]["attempt"]) if rows else None

    async def record_outcome(
        self, queue_job_id: int, attempt: int, outcome: dict[str, Any]
    ) -> bool:
        """Record how ``attempt`` ended; False (nothing written) when a later attempt took
        the job over or an outcome is already recorded: the caller's work is stale."""
        rows = await self._runner.execute_query_all_async(
            _RECORD,
            queue_job_id=queue_job_id,
            attempt=attempt,
            outcome=json.dumps(outcome, sort_keys=True),
        )
        return bool(rows)

    async def states(self, queue_job_ids: Iterable[int]) -> dict[int, RunState]:
        """The ledger rows of these jobs (jobs no worker started yet are absent)."""
        ids = sorted(set(queue_job_ids))
        if not ids:
            return {}
        rows = await self._runner.execute_query_all_async(_READ, ids=ids)
        return {int(row["queue_job_id"]): _state(row) for row in rows}

    async def forget(self, queue_job_id: int) -> None:
        """Drop a delivered job's row (the job record keeps what matters)."""
        await self._runner.execute_query_all_async(_FORGET, queue_job_id=queue_job_id)


def _state(row: dict[str, Any]) -> RunState:
    return RunState(
        queue_job_id=int(row["queue_job_id"]),
        job_id=str(row["job_id"]),
        attempt=int(row["attempt"]),
        worker=row["worker"],
        outcome=json.loads(row["outcome"]) if row["outcome"] is not None else None,
    )
