"""The chat flow with the real store, pool and ffmpeg; only the platform is a recorder."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.chat.conversation.credits import display_title
from bot.chat.conversation.flow import ChatFlow
from bot.chat.conversation.types import SongUpload
from bot.process.wiring import flow_config
from bot.settings import Settings
from storage.order import StoredOrder
from storage.records import ChatRef, JobRequest, JobStatus
from tests.support.chat import CHAT, USER, RecordingReplier, upload_of


async def _songs_used(flow: ChatFlow) -> int:
    user = await flow._store.users.get("telegram", "1")
    status = await flow._store.quotas.status(user, flow._config.quota_limits("telegram"))
    return status.songs_used


async def test_results_that_cannot_fit_the_platform_are_explained(flow, song):
    replier = RecordingReplier(max_file_bytes=30_000)  # 6 s at 96 kb/s needs ~72 KB
    job = await flow.handle_song(USER, CHAT, replier, upload_of(song))
    assert job is not None and job.status == "failed" and job.error_kind == "output_too_large"
    assert "too long for the results to fit" in replier.texts[-1]
    assert replier.files == []
    assert await _songs_used(flow) == 0


async def test_bitrate_is_lowered_to_fit_the_platform(flow, song):
    replier = RecordingReplier(max_file_bytes=130_000)  # fits 160 kb/s, not 320
    job = await flow.handle_song(USER, CHAT, replier, upload_of(song))
    assert job is not None and job.status == "done"
    assert [file.path.stat().st_size <= 130_000 for file in replier.files] == [True, True]


async def test_a_failed_delivery_refunds_and_gives_a_reference(flow, song, caplog):
    replier = RecordingReplier(fail_uploads=True)
    with caplog.at_level(logging.ERROR):
        job = await flow.handle_song(USER, CHAT, replier, upload_of(song))
    assert job is not None and job.status == "failed"
    reference = re.search(r"reference ([0-9a-f]{6})", replier.texts[-1])
    assert reference is not None
    assert f"ref={reference.group(1)}" in caplog.text
    assert await _songs_used(flow) == 0


async def test_declared_size_is_checked_before_downloading(flow, song):
    streamed = []

    async def stream() -> AsyncIterator[bytes]:
        streamed.append(True)
        yield b""

    upload = SongUpload(stream=stream, file_name="big.mp3", declared_size=25_000_000)
    replier = RecordingReplier()
    assert await flow.handle_song(USER, CHAT, replier, upload) is None
    assert "too big" in replier.texts[-1]
    assert streamed == []


async def test_a_lying_declared_size_is_caught_while_streaming(flow, song, tmp_path):
    replier = RecordingReplier(max_download_bytes=50_000)
    upload = upload_of(song, declared_size=1000)  # the real file is ~100 KB
    assert await flow.handle_song(USER, CHAT, replier, upload) is None
    assert "too big" in replier.texts[-1]
    assert list((tmp_path / "data" / "uploads").iterdir()) == []


async def test_files_are_named_after_the_title_and_instrumental_comes_first(flow, song):
    replier = RecordingReplier()
    await flow.handle_song(USER, CHAT, replier, upload_of(song, title_hint="AC/DC: Back\nin Black"))
    assert [file.filename for file in replier.files] == [
        "AC DC Back in Black (Instrumental).mp3",
        "AC DC Back in Black (Vocals).mp3",
    ]
    assert replier.texts[0] == "Downloading your song..."
    assert replier.texts[-1].startswith("Done!")


@pytest.mark.parametrize(
    "candidates, expected",
    [
        (("../../etc/passwd",), "etc passwd"),
        ((None, "", "  . "), "Song"),
        (("x" * 300,), "x" * 80),
        (("a\x00b\tc",), "a b c"),
        ((None, "From tags"), "From tags"),
    ],
)
def test_display_titles_are_safe_file_names(candidates, expected):
    assert display_title(*candidates) == expected


async def test_the_progress_message_is_kept_with_the_job_for_a_restart(flow, song):
    replier = RecordingReplier()
    job = await flow.handle_song(USER, CHAT, replier, upload_of(song))
    assert job is not None and job.status == "done"
    assert job.order.progress_message == "1"  # the first (and only) message sent


async def test_a_repeated_song_is_a_free_cache_hit_recorded_with_the_cache_key(flow, song):
    first = await flow.handle_song(USER, CHAT, RecordingReplier(), upload_of(song))
    again = await flow.handle_song(USER, CHAT, RecordingReplier(), upload_of(song))
    assert first is not None and again is not None
    assert (first.status, first.cache_hit) == ("done", False)
    assert (again.status, again.cache_hit) == ("done", True)
    # Both jobs record the key of the one cache entry that served them, which is not the
    # input's hash (the flow once recorded the hash, through a result attribute that
    # never was): the key also covers the model and the settings.
    assert first.cache_key is not None and first.cache_key == again.cache_key
    assert first.cache_key != first.input_sha256
    assert await _songs_used(flow) == 1


def test_help_promises_the_retention_of_the_result_cache(tmp_path):
    settings = Settings.model_validate(
        {"general": {"data_dir": str(tmp_path)}, "pool": {"cache_max_age_hours": 6}}
    )
    config = flow_config(settings)
    assert config.retention_hours == 6
    chat = ChatFlow(store=None, backend=None, config=config)  # /help needs neither
    assert "stay on my server for up to 6 hours" in chat.help(commands=[("/help", "this")])


def _request_of(song: Path, order: StoredOrder) -> JobRequest:
    """A job for ``song`` reserved straight in the store, as a front-end's record."""
    return JobRequest(
        input_sha256=hashlib.sha256(song.read_bytes()).hexdigest(),
        input_duration_seconds=6.0,
        input_size_bytes=song.stat().st_size,
        model="tiny",
        order=order,
        original_filename="clip.mp3",
        input_path=song,  # not a saved upload: the store leaves it alone
        chat=ChatRef(chat_id="1", message_id="10"),
    )


async def test_a_song_marked_running_after_its_record_was_read_is_followed_not_failed(flow, song):
    """Issue 21 item 1, the narrow case: the record a front-end resumes says "queued"
    (read just before a takeover) while the front-end that had the song recorded its
    start meanwhile. The run goes on and is delivered, not failed as "cannot become
    running"."""
    store = flow._store
    user = await store.users.upsert("telegram", "1", "Ann")
    request = _request_of(song, StoredOrder(stems="two", output_format="mp3"))
    stale = await store.jobs.reserve(user, request, flow.config.quota_limits("telegram"))
    await store.jobs.mark_running(stale.id)  # by the process that had the song
    replier = RecordingReplier()
    record = await flow.run_job(USER, stale, replier)
    assert record.status is JobStatus.DONE and len(replier.files) == 2


async def test_the_upload_is_hashed_once_on_the_local_backend(flow, song, monkeypatch):
    """Issue 22: the SHA-256 taken as the upload is saved travels with the job; the pool
    keys its cache with it instead of reading the file again to hash it."""
    import separation.pool.lifecycle as lifecycle
    import storage.files as files

    hashes: list[str] = []

    class CountingHashlib:
        @staticmethod
        def sha256(*data: bytes) -> hashlib._Hash:
            hashes.append("save_upload")
            return hashlib.sha256(*data)

    real_file_sha256 = lifecycle.file_sha256

    def counting_file_sha256(path: Path) -> str:
        hashes.append(f"pool: {path.name}")
        return real_file_sha256(path)

    monkeypatch.setattr(files, "hashlib", CountingHashlib)
    monkeypatch.setattr(lifecycle, "file_sha256", counting_file_sha256)
    job = await flow.handle_song(USER, CHAT, RecordingReplier(), upload_of(song))
    assert job is not None and job.status == "done" and job.cache_hit is False
    assert hashes == ["save_upload"]
    assert job.input_sha256 == hashlib.sha256(song.read_bytes()).hexdigest()


async def test_a_job_is_run_as_its_stored_order_says(flow, song):
    """Recovery and takeovers run a job from its record alone: its typed order decides the
    stems, the format and the message that goes on showing its progress."""
    store = flow._store
    user = await store.users.upsert("telegram", "1", "Ann")
    order = StoredOrder(stems="four", output_format="flac", progress_message="7")
    request = _request_of(song, order)
    job = await store.jobs.reserve(user, request, flow.config.quota_limits("telegram"))
    sent: list[str] = []
    edited: list[int] = []

    class Screen(RecordingReplier):
        async def send_text(self, text: str) -> int:
            sent.append(text)
            return await super().send_text(text)

        async def edit_text(self, handle: int, text: str) -> None:
            edited.append(handle)
            await super().edit_text(handle, text)

    replier = Screen()
    record = await flow.run_job(USER, job, replier)
    assert record.status is JobStatus.DONE
    assert [file.path.suffix for file in replier.files] == [".flac"] * 4
    assert sent == [] and edited and set(edited) == {7}  # went on in message 7
