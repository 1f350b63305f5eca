"""Check-and-reserve is atomic under real concurrency.

Each of the 50 tasks calls the store on its own, and every store call opens its own
session and connection. With ``serialize_sqlite_writes=False`` nothing in Python orders
the requests, so they race inside the database and only SQLite's write lock or
PostgreSQL's row lock keeps check-and-reserve atomic; the default store additionally
queues SQLite writers in-process, which must give the same answer.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from storage import QuotaExceededError, QuotaRefusedError, TooManyConcurrentJobsError
from storage.models import Job, Usage


async def _race(store, user, request, quota, tasks: int = 50) -> tuple[list, list]:
    async def attempt():
        try:
            return await store.jobs.reserve(user, request, quota)
        except QuotaRefusedError as refusal:
            return refusal

    outcomes = await asyncio.gather(*(asyncio.create_task(attempt()) for _ in range(tasks)))
    accepted = [o for o in outcomes if not isinstance(o, QuotaRefusedError)]
    refused = [o for o in outcomes if isinstance(o, QuotaRefusedError)]
    return accepted, refused


async def _count_rows(store) -> tuple[int, int]:
    async with store._db.read() as session:
        jobs = await session.scalar(select(func.count()).select_from(Job))
        usage = await session.scalar(select(func.count()).select_from(Usage))
    return jobs, usage


@pytest.mark.parametrize("attempt", range(2))
@pytest.mark.parametrize("writer_queue", [False, True], ids=["db-lock-only", "writer-queue"])
async def test_fifty_racing_requests_with_a_limit_of_three_accept_three(
    backend, data_dir, make_limits, make_request, writer_queue, attempt
):
    store = await backend.open_store(data_dir, serialize_sqlite_writes=writer_queue)
    try:
        user = await store.users.upsert("telegram", "1", "Ann")
        accepted, refused = await _race(store, user, make_request(), make_limits(songs=3))
        assert len(accepted) == 3
        assert len(refused) == 47
        assert all(isinstance(refusal, QuotaExceededError) for refusal in refused)
        assert len({job.id for job in accepted}) == 3
        assert await _count_rows(store) == (3, 3)  # the job and its charge, together
    finally:
        await store.close()


async def test_racing_requests_respect_the_concurrency_limit(store, make_limits, make_request):
    user = await store.users.upsert("telegram", "1", "Ann")
    accepted, refused = await _race(store, user, make_request(), make_limits(concurrent=2))
    assert len(accepted) == 2
    assert all(isinstance(refusal, TooManyConcurrentJobsError) for refusal in refused)


async def test_two_processes_racing_on_one_database_accept_three(
    backend, data_dir, make_limits, make_request
):
    # Two stores = two engines and pools, as two bot processes would have.
    first = await backend.open_store(data_dir)
    second = await backend.open_store(data_dir)
    try:
        user = await first.users.upsert("telegram", "1", "Ann")
        quota = make_limits(songs=3)
        (a, _), (b, _) = await asyncio.gather(
            _race(first, user, make_request(), quota, tasks=25),
            _race(second, user, make_request(), quota, tasks=25),
        )
        assert len(a) + len(b) == 3
    finally:
        await first.close()
        await second.close()


async def test_racing_users_do_not_share_quota(store, make_limits, make_request):
    quota = make_limits(songs=2)
    users = [await store.users.upsert("discord", str(n), f"user {n}") for n in range(5)]
    results = await asyncio.gather(
        *(_race(store, user, make_request(), quota, tasks=10) for user in users)
    )
    assert [len(accepted) for accepted, _ in results] == [2] * 5


async def test_racing_first_sightings_create_one_user(store):
    # On PostgreSQL the losers hit the unique constraint and load the winner's row.
    users = await asyncio.gather(
        *(store.users.upsert("telegram", "42", f"name {n}") for n in range(20))
    )
    assert len({user.id for user in users}) == 1
