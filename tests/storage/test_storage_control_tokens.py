"""Karaoke buttons name a job by an opaque token, and ids from users never reach the
database out of range (issue 20)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from storage import JobNotFoundError
from storage.db import Database
from storage.migrate import current_revision, head_revision
from storage.records import is_control_token
from tests.support.store import Backend, run_alembic


async def test_each_job_gets_its_own_token_and_is_found_by_it(store, make_limits, make_request):
    user = await store.users.upsert("telegram", "1", "Ann")
    first = await store.jobs.reserve(user, make_request(), make_limits())
    second = await store.jobs.reserve(user, make_request(), make_limits())
    assert first.control_token is not None and second.control_token is not None
    assert is_control_token(first.control_token) and len(first.control_token) == 12
    assert first.control_token != second.control_token
    assert (await store.jobs.get_by_control_token(second.control_token)).id == second.id


@pytest.mark.parametrize(
    "token",
    ["", "AAAAAAAAAAAA", "1", "x" * 13, "%%%%%%%%%%%%", "' OR 1=1 --", "A" * 10_000],
)
async def test_unknown_or_malformed_tokens_are_not_found(store, token):
    with pytest.raises(JobNotFoundError):
        await store.jobs.get_by_control_token(token)


@pytest.mark.parametrize("job_id", [2**63, 2**64 + 5, -(2**63) - 1, 0, -1])
async def test_ids_no_row_can_have_are_not_found_instead_of_overflowing(store, job_id):
    """2**63 was "Python int too large to convert to SQLite INTEGER" (an ERROR)."""
    with pytest.raises(JobNotFoundError):
        await store.jobs.get(job_id)


async def test_the_migration_gives_existing_jobs_distinct_tokens(
    backend: Backend,
    data_dir: Path,
    database: Database,
    make_limits,
    make_request,
) -> None:
    store = await backend.open_store(data_dir)
    try:
        user = await store.users.upsert("telegram", "1", "Ann")
        jobs = [await store.jobs.reserve(user, make_request(), make_limits()) for _ in range(3)]
    finally:
        await store.close()

    await run_alembic(database, "downgrade", "0005")  # before control tokens
    await run_alembic(database, "upgrade", "head")
    assert await current_revision(database) == head_revision()
    async with database.read() as session:
        tokens = (await session.execute(text("SELECT control_token FROM jobs"))).scalars().all()
    assert len(set(tokens)) == len(jobs) and all(is_control_token(t) for t in tokens)
    assert {job.control_token for job in jobs}.isdisjoint(tokens)  # new random ones
