"""Jobs: what is recorded, the allowed status changes, and uploads deleted at the end."""

from __future__ import annotations

import pytest

from storage import (
    ChatRef,
    InvalidCacheKeyError,
    InvalidJobRequestError,
    JobNotFoundError,
    JobStateError,
    JobStatus,
)
from storage.order import StoredOrder


async def test_a_reserved_job_records_everything_needed_to_deliver_later(
    store, clock, make_limits, make_request
):
    user = await store.users.upsert("discord", "99", "Dee")
    chat = ChatRef(guild_id="1", channel_id="2", message_id="3")
    job = await store.jobs.reserve(user, make_request(seconds=200.5, chat=chat), make_limits())

    stored = await store.jobs.get(job.id)
    assert stored == job
    assert stored.status is JobStatus.QUEUED
    assert stored.user_id == user.id
    assert stored.chat == chat
    assert stored.input_duration_seconds == 200.5
    assert stored.input_size_bytes == 4
    assert len(stored.input_sha256) == 64
    assert stored.original_filename == "My Song.mp3"
    assert stored.model == "htdemucs"
    assert stored.order == StoredOrder(stems="two", output_format="mp3")
    assert stored.created_at == clock.now
    assert stored.started_at is None and stored.finished_at is None


async def test_a_job_goes_queued_running_done(store, clock, make_limits, make_request):
    user = await store.users.upsert("telegram", "1", "Ann")
    job = await store.jobs.reserve(user, make_request(), make_limits())
    clock.advance(seconds=5)
    running = await store.jobs.mark_running(job.id)
    assert running.status is JobStatus.RUNNING and running.started_at == clock.now
    clock.advance(minutes=2)
    done = await store.jobs.mark_done(job.id, "k" * 64)
    assert done.status is JobStatus.DONE
    assert done.finished_at == clock.now
    assert (done.cache_key, done.cache_hit) == ("k" * 64, False)
    assert await store.jobs.active(user) == []


async def test_active_jobs_lists_queued_and_running_oldest_first(store, make_limits, make_request):
    user = await store.users.upsert("telegram", "1", "Ann")
    other = await store.users.upsert("telegram", "2", "Bob")
    first = await store.jobs.reserve(user, make_request(), make_limits())
    second = await store.jobs.reserve(user, make_request(), make_limits())
    third = await store.jobs.reserve(user, make_request(), make_limits())
    await store.jobs.reserve(other, make_request(), make_limits())
    await store.jobs.mark_running(second.id)
    await store.jobs.mark_cancelled(third.id)
    assert [(j.id, j.status) for j in await store.jobs.active(user)] == [
        (first.id, JobStatus.QUEUED),
        (second.id, JobStatus.RUNNING),
    ]


@pytest.mark.parametrize(
    ("setup", "action"),
    [
        (["running"], "running"),
        (["done"], "running"),
        (["done"], "done"),
        (["cancelled"], "failed"),
        (["failed"], "done"),
        (["running", "done"], "cancelled"),
    ],
)
async def test_impossible_status_changes_are_typed_errors(
    store, make_limits, make_request, setup, action
):
    user = await store.users.upsert("telegram", "1", "Ann")
    job = await store.jobs.reserve(user, make_request(), make_limits())
    moves = {
        "running": lambda: store.jobs.mark_running(job.id),
        "done": lambda: store.jobs.mark_done(job.id, "key"),
        "failed": lambda: store.jobs.mark_failed(job.id, "boom"),
        "cancelled": lambda: store.jobs.mark_cancelled(job.id),
    }
    for step in setup:
        await moves[step]()
    before = await store.jobs.get(job.id)
    with pytest.raises(JobStateError) as caught:
        await moves[action]()
    assert caught.value.requested == action
    assert await store.jobs.get(job.id) == before


async def test_unknown_jobs_are_typed_errors(store):
    for call in (
        store.jobs.get(404),
        store.jobs.mark_running(404),
        store.jobs.mark_failed(404, "x"),
    ):
        with pytest.raises(JobNotFoundError, match="no such job: 404"):
            await call


@pytest.mark.parametrize("end", ["done", "failed", "cancelled"])
async def test_the_upload_is_deleted_when_its_job_ends(store, make_limits, make_request, end):
    user = await store.users.upsert("telegram", "1", "Ann")
    upload = await store.files.save_upload(b"audio", max_bytes=100)
    job = await store.jobs.reserve(user, make_request(input_path=upload.path), make_limits())
    assert job.input_path == upload.path
    await store.jobs.mark_running(job.id)
    if end == "done":
        finished = await store.jobs.mark_done(job.id, "key")
    elif end == "failed":
        finished = await store.jobs.mark_failed(job.id, "oom")
    else:
        finished = await store.jobs.mark_cancelled(job.id)
    assert not upload.path.exists()
    assert finished.input_path is None


async def test_a_file_outside_the_uploads_folder_is_never_deleted(
    store, tmp_path, make_limits, make_request
):
    # A job may point at a file the store did not save (an operator's own).
    own_file = tmp_path / "my song.flac"
    own_file.write_bytes(b"precious")
    user = await store.users.upsert("discord", "5", "Me")
    job = await store.jobs.reserve(user, make_request(input_path=own_file), make_limits())
    await store.jobs.mark_failed(job.id, "decode_error")
    assert own_file.read_bytes() == b"precious"


async def test_a_missing_upload_does_not_stop_a_job_ending(store, make_limits, make_request):
    user = await store.users.upsert("telegram", "1", "Ann")
    upload = await store.files.save_upload(b"audio", max_bytes=100)
    job = await store.jobs.reserve(user, make_request(input_path=upload.path), make_limits())
    upload.path.unlink()
    assert (await store.jobs.mark_cancelled(job.id)).status is JobStatus.CANCELLED


@pytest.mark.parametrize(
    "fields",
    [
        {"input_sha256": "not-a-hash"},
        {"input_duration_seconds": -1.0},
        {"input_duration_seconds": float("inf")},
        {"input_size_bytes": -5},
        {"model": ""},
        {"model": "m" * 65},
    ],
)
def test_bad_job_requests_are_typed_errors(make_request, fields):
    valid = make_request()
    arguments = {
        "input_sha256": valid.input_sha256,
        "input_duration_seconds": valid.input_duration_seconds,
        "input_size_bytes": valid.input_size_bytes,
        "model": valid.model,
    }
    with pytest.raises(InvalidJobRequestError):
        type(valid)(**(arguments | fields))


async def test_long_free_text_is_cut_to_fit_every_backend(store, make_limits, make_request):
    user = await store.users.upsert("telegram", "1", "Ann")
    request = make_request()
    long_name = type(request)(
        input_sha256=request.input_sha256,
        input_duration_seconds=1.0,
        input_size_bytes=1,
        model="htdemucs",
        original_filename="x" * 1000 + ".mp3",
    )
    job = await store.jobs.reserve(user, long_name, make_limits())
    assert len(job.original_filename) == 255
    failed = await store.jobs.mark_failed(job.id, "e" * 500)
    assert failed.error_kind == "e" * 64


async def test_an_overlong_cache_key_is_a_typed_error(store, make_limits, make_request):
    user = await store.users.upsert("telegram", "1", "Ann")
    job = await store.jobs.reserve(user, make_request(), make_limits())
    with pytest.raises(InvalidCacheKeyError):
        await store.jobs.mark_done(job.id, "k" * 129)
    assert (await store.jobs.get(job.id)).status is JobStatus.QUEUED
