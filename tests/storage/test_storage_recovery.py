"""Recovery: what a crashed process left queued or running is requeued or failed."""

from __future__ import annotations

from storage import ChatRef, JobStatus, RecoveryAction


async def test_interrupted_jobs_are_requeued_or_failed_and_reported(
    backend, data_dir, clock, make_limits, make_request
):
    quota = make_limits(songs=10)
    chat = ChatRef(chat_id="555", message_id="7")
    before = await backend.open_store(data_dir, clock=clock)
    user = await before.users.upsert("telegram", "1", "Ann")
    kept = await before.files.save_upload(b"still here", max_bytes=100)
    lost = await before.files.save_upload(b"gone", max_bytes=100)

    queued_with_input = await before.jobs.reserve(user, make_request(input_path=kept.path), quota)
    running_without_input = await before.jobs.reserve(
        user, make_request(input_path=lost.path, chat=chat), quota
    )
    await before.jobs.mark_running(running_without_input.id)
    queued_without_path = await before.jobs.reserve(user, make_request(), quota)
    finished = await before.jobs.reserve(user, make_request(), quota)
    await before.jobs.mark_done(finished.id, "key")
    lost.path.unlink()
    await before.close()  # the process dies here

    clock.advance(minutes=10)
    after = await backend.open_store(data_dir, clock=clock)
    try:
        report = await after.upkeep.recover_interrupted()
        outcome = {item.job.id: item for item in report}
        assert set(outcome) == {
            queued_with_input.id,
            running_without_input.id,
            queued_without_path.id,
        }

        requeued = outcome[queued_with_input.id]
        assert requeued.action is RecoveryAction.REQUEUED
        assert requeued.job.status is JobStatus.QUEUED
        assert requeued.job.input_path == kept.path
        assert kept.path.exists()

        failed = outcome[running_without_input.id]
        assert failed.action is RecoveryAction.FAILED
        assert failed.job.status is JobStatus.FAILED
        assert failed.job.error_kind == "interrupted"
        assert failed.job.finished_at == clock.now
        assert failed.job.chat == chat
        assert failed.user.ref == "telegram:1"
        assert outcome[queued_without_path.id].action is RecoveryAction.FAILED

        # Both failed jobs were refunded; the requeued and the finished one stay charged.
        assert (await after.quotas.status(user, quota)).songs_used == 2
        # Nothing is left running.
        assert [job.status for job in await after.jobs.active(user)] == [JobStatus.QUEUED]
    finally:
        await after.close()


async def test_a_running_job_with_its_input_goes_back_to_the_queue(
    store, make_limits, make_request
):
    user = await store.users.upsert("discord", "3", "Cy")
    upload = await store.files.save_upload(b"audio", max_bytes=100)
    job = await store.jobs.reserve(user, make_request(input_path=upload.path), make_limits())
    await store.jobs.mark_running(job.id)
    [recovered] = await store.upkeep.recover_interrupted()
    assert recovered.action is RecoveryAction.REQUEUED
    assert recovered.job.status is JobStatus.QUEUED
    assert recovered.job.started_at is None
    # And it can run again.
    assert (await store.jobs.mark_running(job.id)).status is JobStatus.RUNNING


async def test_nothing_to_recover(store):
    assert await store.upkeep.recover_interrupted() == []
