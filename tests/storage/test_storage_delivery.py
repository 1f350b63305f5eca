"""The distributed backend's job bookkeeping: queue ids, attempts and delivery leases.

A front-end claims the delivery of a job for a lease, renews it while it runs, and
releases it on a clean shutdown; a job whose deliverer's lease is over is an orphan
that another front-end of its platform takes over. Times come from the store's clock
(the tests' FakeClock), as for quotas.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from storage import JobNotFoundError, JobRecord, JobStatus
from storage.errors import InvalidDeliveryClaimError
from tests.support.store import START

LEASE = 60.0


@pytest.fixture
async def user(store):
    return await store.users.upsert("telegram", "1", "Ann")


@pytest.fixture
async def job(store, user, make_limits, make_request) -> JobRecord:
    return await store.jobs.reserve(user, make_request(), make_limits())


async def test_a_new_job_has_no_attempt_queue_job_or_deliverer(job) -> None:
    assert job.attempt == 0
    assert job.queue_job_id is None
    assert job.delivered_by is None
    assert job.delivery_lease_until is None


async def test_records_built_without_the_new_fields_still_work(job) -> None:
    fields = {name: getattr(job, name) for name in job.__dataclass_fields__}
    for name in ("attempt", "queue_job_id", "delivered_by", "delivery_lease_until"):
        del fields[name]
    assert JobRecord(**fields).attempt == 0


async def test_the_queue_job_id_is_kept_and_replaced(store, job) -> None:
    await store.deliveries.set_queue_job(job.id, 2**40)  # bigint: procrastinate's ids are
    assert (await store.jobs.get(job.id)).queue_job_id == 2**40
    await store.deliveries.set_queue_job(job.id, 7)
    assert (await store.jobs.get(job.id)).queue_job_id == 7


async def test_attempts_count_up(store, job) -> None:
    assert [await store.deliveries.record_attempt(job.id) for _ in range(3)] == [1, 2, 3]
    assert (await store.jobs.get(job.id)).attempt == 3


async def test_unknown_jobs_are_refused(store) -> None:
    with pytest.raises(JobNotFoundError):
        await store.deliveries.set_queue_job(999, 1)
    with pytest.raises(JobNotFoundError):
        await store.deliveries.record_attempt(999)
    with pytest.raises(JobNotFoundError):
        await store.deliveries.claim(999, "fe-a", LEASE)


async def test_a_claim_sets_the_deliverer_and_the_lease(store, job) -> None:
    assert await store.deliveries.claim(job.id, "fe-a", LEASE) is True
    claimed = await store.jobs.get(job.id)
    assert claimed.delivered_by == "fe-a"
    assert claimed.delivery_lease_until == START + timedelta(seconds=LEASE)


async def test_a_live_lease_keeps_others_out_but_lets_its_holder_renew(store, job, clock) -> None:
    assert await store.deliveries.claim(job.id, "fe-a", LEASE)
    clock.advance(seconds=LEASE - 1)
    assert await store.deliveries.claim(job.id, "fe-b", LEASE) is False
    assert await store.deliveries.claim(job.id, "fe-a", LEASE) is True
    assert (await store.jobs.get(job.id)).delivery_lease_until == clock.now + timedelta(
        seconds=LEASE
    )


async def test_an_expired_lease_lets_another_front_end_take_over(store, job, clock) -> None:
    assert await store.deliveries.claim(job.id, "fe-a", LEASE)
    clock.advance(seconds=LEASE)  # a lease ending now is over
    assert await store.deliveries.claim(job.id, "fe-b", LEASE) is True
    assert (await store.jobs.get(job.id)).delivered_by == "fe-b"
    assert await store.deliveries.claim(job.id, "fe-a", LEASE) is False


@pytest.mark.parametrize("status", ["running", "done", "failed", "cancelled"])
async def test_only_unfinished_jobs_can_be_claimed(store, job, status) -> None:
    if status != "running":
        await store.jobs.mark_running(job.id)
    finish = {
        "running": store.jobs.mark_running,
        "done": store.jobs.mark_done,
        "failed": lambda job_id: store.jobs.mark_failed(job_id, "boom"),
        "cancelled": store.jobs.mark_cancelled,
    }[status]
    await finish(job.id)
    claimed = await store.deliveries.claim(job.id, "fe-a", LEASE)
    assert claimed is (status == "running")


@pytest.mark.parametrize(
    ("frontend_id", "lease"),
    [("", LEASE), ("x" * 65, LEASE), ("fe-a", 0.0), ("fe-a", -1.0), ("fe-a", float("nan"))],
)
async def test_unusable_ids_and_leases_are_refused(store, job, frontend_id, lease) -> None:
    with pytest.raises(InvalidDeliveryClaimError):
        await store.deliveries.claim(job.id, frontend_id, lease)
    with pytest.raises(InvalidDeliveryClaimError):
        await store.deliveries.renew(frontend_id, lease)
    assert (await store.jobs.get(job.id)).delivered_by is None


async def test_the_longest_id_fits(store, job) -> None:
    assert await store.deliveries.claim(job.id, "x" * 64, LEASE)
    assert (await store.jobs.get(job.id)).delivered_by == "x" * 64


async def test_renewal_extends_only_this_front_ends_unfinished_jobs(
    store, user, make_limits, make_request, clock
) -> None:
    jobs = [await store.jobs.reserve(user, make_request(), make_limits()) for _ in range(4)]
    for job in jobs[:3]:
        assert await store.deliveries.claim(job.id, "fe-a", LEASE)
    assert await store.deliveries.claim(jobs[3].id, "fe-b", LEASE)
    await store.jobs.mark_cancelled(jobs[2].id)
    clock.advance(seconds=30)
    assert await store.deliveries.renew("fe-a", LEASE) == 2
    leases = {job.id: (await store.jobs.get(job.id)).delivery_lease_until for job in jobs}
    renewed = clock.now + timedelta(seconds=LEASE)
    original = START + timedelta(seconds=LEASE)
    assert leases == {
        jobs[0].id: renewed,
        jobs[1].id: renewed,
        jobs[2].id: original,
        jobs[3].id: original,
    }
    assert await store.deliveries.renew("fe-c", LEASE) == 0


async def test_a_job_taken_over_is_not_renewed_by_its_old_deliverer(store, job, clock) -> None:
    assert await store.deliveries.claim(job.id, "fe-a", LEASE)
    clock.advance(seconds=LEASE + 1)
    assert await store.deliveries.claim(job.id, "fe-b", LEASE)
    assert await store.deliveries.renew("fe-a", LEASE) == 0


async def test_a_release_hands_the_job_over_at_once(store, job, clock) -> None:
    assert await store.deliveries.claim(job.id, "fe-a", LEASE)
    clock.advance(seconds=1)
    assert await store.deliveries.orphaned("telegram") == []
    await store.deliveries.release(job.id, "fe-a")
    assert [orphan.id for orphan in await store.deliveries.orphaned("telegram")] == [job.id]
    assert await store.deliveries.claim(job.id, "fe-b", LEASE) is True
    assert await store.deliveries.orphaned("telegram") == []


async def test_a_release_by_another_front_end_changes_nothing(store, job) -> None:
    assert await store.deliveries.claim(job.id, "fe-a", LEASE)
    await store.deliveries.release(job.id, "fe-b")
    await store.deliveries.release(job.id + 1000, "fe-a")  # unknown jobs are no error
    assert await store.deliveries.claim(job.id, "fe-b", LEASE) is False
    assert (await store.jobs.get(job.id)).delivery_lease_until == START + timedelta(seconds=LEASE)


async def test_orphans_are_claimed_unfinished_jobs_of_the_platform_with_a_lease_over(
    store, make_limits, make_request, clock
) -> None:
    ann = await store.users.upsert("telegram", "1", "Ann")
    bob = await store.users.upsert("discord", "2", "Bob")
    held, expired, never_claimed, finished = [
        await store.jobs.reserve(ann, make_request(), make_limits()) for _ in range(4)
    ]
    other_platform = await store.jobs.reserve(bob, make_request(), make_limits())
    assert await store.deliveries.claim(held.id, "fe-a", LEASE * 10)
    for job in (expired, finished):
        assert await store.deliveries.claim(job.id, "fe-a", LEASE)
    assert await store.deliveries.claim(other_platform.id, "fe-d", LEASE)
    await store.jobs.mark_running(expired.id)
    await store.jobs.mark_cancelled(finished.id)
    assert await store.deliveries.orphaned("telegram") == []
    clock.advance(seconds=LEASE + 1)
    orphans = await store.deliveries.orphaned("telegram")
    assert [(orphan.id, orphan.status) for orphan in orphans] == [(expired.id, JobStatus.RUNNING)]
    assert orphans[0].delivered_by == "fe-a"
    assert [orphan.id for orphan in await store.deliveries.orphaned("discord")] == [
        other_platform.id
    ]
    # ``now`` may be given, like everywhere in the store.
    later = await store.deliveries.orphaned("telegram", clock.now + timedelta(seconds=LEASE * 10))
    assert [orphan.id for orphan in later] == [held.id, expired.id]
    assert never_claimed.id not in {orphan.id for orphan in later}


@pytest.mark.parametrize("rounds", [12])
async def test_two_front_ends_racing_for_a_job_one_wins(
    backend, data_dir, clock, make_limits, make_request, rounds
) -> None:
    # Two stores, as two front-end processes have: their own engines and connections,
    # and on SQLite no in-process writer queue, so only the database orders them.
    first = await backend.open_store(data_dir, clock=clock, serialize_sqlite_writes=False)
    second = await backend.open_store(data_dir, clock=clock, serialize_sqlite_writes=False)
    try:
        user = await first.users.upsert("telegram", "1", "Ann")
        for _ in range(rounds):
            job = await first.jobs.reserve(user, make_request(), make_limits(songs=None))
            outcomes = await asyncio.gather(
                first.deliveries.claim(job.id, "fe-a", LEASE),
                second.deliveries.claim(job.id, "fe-b", LEASE),
            )
            assert sorted(outcomes) == [False, True]
            winner = "fe-a" if outcomes[0] else "fe-b"
            assert (await first.jobs.get(job.id)).delivered_by == winner
            # And when the lease runs out, racing for the orphan: again exactly one.
            clock.advance(seconds=LEASE)
            outcomes = await asyncio.gather(
                first.deliveries.claim(job.id, "fe-c", LEASE),
                second.deliveries.claim(job.id, "fe-d", LEASE),
            )
            assert sorted(outcomes) == [False, True]
            await first.jobs.mark_cancelled(job.id)
    finally:
        await first.close()
        await second.close()


async def test_many_front_ends_racing_for_one_job_one_wins(
    backend, data_dir, clock, make_limits, make_request
) -> None:
    store = await backend.open_store(data_dir, clock=clock, serialize_sqlite_writes=False)
    try:
        user = await store.users.upsert("telegram", "1", "Ann")
        job = await store.jobs.reserve(user, make_request(), make_limits())
        outcomes = await asyncio.gather(
            *(store.deliveries.claim(job.id, f"fe-{index}", LEASE) for index in range(8))
        )
        assert outcomes.count(True) == 1
    finally:
        await store.close()


async def test_a_job_reserved_by_a_front_end_is_its_delivery_from_the_start(
    store, user, make_limits, make_request, clock
) -> None:
    """Issue 21: a front-end killed between the reservation and its first claim left a
    job no one would ever take over (never claimed = the local backend's)."""
    job = await store.jobs.reserve(
        user, make_request(), make_limits(), delivered_by="host-a", lease_seconds=LEASE
    )
    assert (job.delivered_by, job.delivery_lease_until) == (
        "host-a", START + timedelta(seconds=LEASE),
    )  # fmt: skip
    [own] = await store.deliveries.to_take_over("telegram", holder="host-a", own_too=True)
    assert own.job.id == job.id  # its restart takes it back at once
    assert await store.deliveries.to_take_over("telegram", holder="host-b") == []
    clock.advance(seconds=LEASE)
    [taken] = await store.deliveries.to_take_over("telegram", holder="host-b")
    assert taken.job.id == job.id  # another front-end, once the lease is over
    with pytest.raises(InvalidDeliveryClaimError):
        await store.jobs.reserve(user, make_request(), make_limits(), delivered_by="host-a")
