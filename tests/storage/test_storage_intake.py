"""The intake journal: songs accepted before their job exists survive a restart."""

from __future__ import annotations

import dataclasses
import os

import pytest

from storage import ChatRef
from storage.errors import IntakeExistsError, InvalidIntakeError, QuotaExceededError
from storage.intake import IntakeRequest

CHAT = ChatRef(chat_id="555", message_id="7")


def user_key(user) -> tuple[str, str, str]:
    """How a platform names the user: what ``accept_song`` records as seen."""
    return user.platform, user.platform_user_id, user.display_name


def _intake(**overrides) -> IntakeRequest:
    fields = {
        "chat": CHAT,
        "file_ref": "AgACAgQAAxkBAAIB",
        "file_unique_id": "AQADFQ",
        "file_name": "My Song.mp3",
        "declared_size": 123_456,
        "options": {"stems": "four", "format": "flac", "controls": {"key": -2}},
    }
    return IntakeRequest(**{**fields, **overrides})


async def test_an_accepted_song_outlives_the_process_until_its_job_exists(
    backend, data_dir, clock, make_limits, make_request
):
    before = await backend.open_store(data_dir, clock=clock)
    user = await before.users.upsert("telegram", "1", "Ann")
    downloading = await before.intake.accept(*user_key(user), _intake())
    await before.intake.note_progress(downloading.id, "1001")
    reserved = await before.intake.accept(*user_key(user), _intake(file_ref="other"))
    job = await before.jobs.reserve(
        user, dataclasses.replace(make_request(), intake_id=reserved.id), make_limits()
    )
    await before.close()  # the process dies while the first song downloads

    after = await backend.open_store(data_dir, clock=clock)
    try:
        [left] = await after.intake.pending()
        assert left.id == downloading.id
        assert left.user.ref == "telegram:1"
        assert left.chat == CHAT
        assert (left.file_ref, left.file_unique_id, left.file_name, left.declared_size) == (
            "AgACAgQAAxkBAAIB",
            "AQADFQ",
            "My Song.mp3",
            123_456,
        )
        assert left.options == {"stems": "four", "format": "flac", "controls": {"key": -2}}
        assert left.progress_message == "1001"
        assert left.accepted_at == clock.now
        assert (await after.jobs.get(job.id)).status == "queued"
        assert await after.intake.forget(left.id) is True
        assert await after.intake.forget(left.id) is False  # recovery and the task may race
        assert await after.intake.pending() == []
    finally:
        await after.close()


async def test_a_refused_reservation_keeps_the_intake_and_charges_nothing(
    store, make_limits, make_request
):
    user = await store.users.upsert("telegram", "1", "Ann")
    accepted = await store.intake.accept(*user_key(user), _intake())
    with pytest.raises(QuotaExceededError):
        await store.jobs.reserve(
            user,
            dataclasses.replace(make_request(), intake_id=accepted.id),
            make_limits(songs=0),
        )
    assert [intake.id for intake in await store.intake.pending()] == [accepted.id]
    status = await store.quotas.status(user, make_limits())
    assert (status.songs_used, status.active_jobs) == (0, 0)  # an intake is no job


async def test_each_front_end_sees_only_its_own_songs(store):
    user = await store.users.upsert("discord", "2", "Bo")
    local = await store.intake.accept(*user_key(user), _intake())
    mine = await store.intake.accept(*user_key(user), _intake(holder="front-a", file_ref="a"))
    await store.intake.accept(*user_key(user), _intake(holder="front-b", file_ref="b"))
    assert [i.id for i in await store.intake.pending()] == [local.id]
    assert [i.id for i in await store.intake.pending(holder="front-a")] == [mine.id]


@pytest.mark.parametrize("file_ref", ["", "x" * 2049])
def test_an_unusable_file_reference_is_refused(file_ref):
    with pytest.raises(InvalidIntakeError):
        _intake(file_ref=file_ref)


async def test_leftover_uploads_and_interrupted_writes_are_removed_at_start(
    store, make_limits, make_request
):
    user = await store.users.upsert("telegram", "1", "Ann")
    kept = await store.files.save_upload(b"a queued job's input", max_bytes=100)
    await store.jobs.reserve(user, make_request(input_path=kept.path), make_limits())
    orphan = await store.files.save_upload(b"downloaded, no job yet", max_bytes=100)
    partial = store.files.uploads_dir / ".abc.upload.0123456789ab.tmp"
    partial.write_bytes(b"half a song")
    os.utime(orphan.path)  # just written: the hourly cleanup's grace would keep both

    report = await store.upkeep.remove_leftover_uploads()

    assert (report.uploads_removed, report.temporaries_removed) == (1, 1)
    assert sorted(store.files.uploads_dir.iterdir()) == [kept.path]


async def test_the_same_message_delivered_again_is_not_a_second_song(store):
    user = await store.users.upsert("telegram", "1", "Ann")
    first = await store.intake.accept(*user_key(user), _intake())
    with pytest.raises(IntakeExistsError) as delivered_again:
        await store.intake.accept(*user_key(user), _intake())
    assert delivered_again.value.intake_id == first.id
    other_message = await store.intake.accept(
        *user_key(user), _intake(chat=ChatRef(chat_id="555", message_id="8"))
    )
    await store.intake.forget(first.id)
    again = await store.intake.accept(
        *user_key(user), _intake()
    )  # a new request, once the first ended
    assert len({first.id, other_message.id, again.id}) == 3
