"""What crosses between hosts survives the trip; the shared cache forgets old results."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.distributed.blobs import LocalBlobStore
from bot.distributed.retention import remove_expired_results
from bot.distributed.wire import (
    MANIFEST_NAME,
    OutputFile,
    ResultManifest,
    error_from_dict,
    error_to_dict,
    progress_message,
    read_progress_message,
    request_from_payload,
    request_to_payload,
    result_prefix,
)
from separation.audio.encode import EncodingSpec
from separation.audio.ffmpeg import ProbeResult
from separation.errors import (
    AudioTooLongError,
    CorruptAudioError,
    JobFailedError,
    OutputTooLargeError,
    WorkerLostError,
)
from separation.jobs import Decoded, Queued, Running, SeparationRequest

KEY = "ab" * 32


@pytest.mark.parametrize(
    "error",
    [
        CorruptAudioError(detail="moov atom not found"),
        AudioTooLongError(duration_seconds=None, limit_seconds=900),
        OutputTooLargeError(duration_seconds=600, budget_bytes=10_000_000, min_bitrate=96),
        WorkerLostError(attempts=3),
    ],
)
def test_typed_errors_cross_with_their_class_and_sentence(error):
    back = error_from_dict(error_to_dict(error))
    assert type(back) is type(error)
    assert str(back) == str(error)
    assert getattr(back, "user_message", None) == getattr(error, "user_message", None)


def test_a_foreign_error_crosses_as_a_generic_failure_without_its_traceback():
    back = error_from_dict(error_to_dict(KeyError("boom")))
    assert isinstance(back, JobFailedError) and "KeyError" in str(back)
    assert isinstance(error_from_dict({"type": "os", "message": "x"}), JobFailedError)


def test_a_request_survives_the_queue(tmp_path: Path):
    probe = ProbeResult(180.0, False, True, "mp3", 44100, 2, {"title": "T"})
    request = SeparationRequest(
        user_ref="discord:9", input_path=tmp_path / "x.upload", stems="four",
        encoding=EncodingSpec(format="opus", bitrate_kbps=128), max_output_bytes=25_000_000,
        min_mp3_bitrate=128, fallback_title="Song", job_id="42", probe=probe,
        input_sha256=KEY,  # taken once, as the front-end saved the upload
    )  # fmt: skip
    payload = request_to_payload(request, job_id="42")
    assert payload["input_key"] == "inputs/42.upload"
    back = request_from_payload(payload, tmp_path / "copy.upload")
    assert back == SeparationRequest(**{**request.__dict__, "input_path": tmp_path / "copy.upload"})


@pytest.mark.parametrize("stems", ["FOUR", None, 4, "three"])
def test_a_queued_job_without_a_stem_mode_is_refused_not_guessed(tmp_path: Path, stems):
    """The stem mode is parsed where the user chose it; the wire carries it as chosen."""
    request = SeparationRequest(user_ref="discord:9", input_path=tmp_path / "x.upload")
    payload = {**request_to_payload(request, job_id="42"), "stems": stems}
    with pytest.raises(ValueError, match="stem mode"):
        request_from_payload(payload, tmp_path / "copy.upload")


@pytest.mark.parametrize(
    "event", [Queued(3, 12.0), Running(0.25, 40.0), Decoded(181.5), Queued(1, None)]
)
def test_progress_events_survive_notify(event):
    text = progress_message("job-1", 2, event)
    assert text is not None and len(text.encode()) < 8000  # PostgreSQL's NOTIFY limit
    note = read_progress_message(text)
    assert note is not None and (note.job_id, note.attempt, note.event) == ("job-1", 2, event)


@pytest.mark.parametrize("text", ["", "{", '{"job": "../x"}', '{"job": "a", "event": 3}', "[]"])
def test_malformed_progress_is_ignored(text):
    note = read_progress_message(text)
    assert note is None or note.event is None


def test_a_manifest_may_only_name_files_of_its_own_result():
    outside = ResultManifest(KEY, [OutputFile("vocals", "inputs/42.upload", 1, "0")], 1.0, None)
    with pytest.raises(ValueError, match="outside"):
        ResultManifest.from_json(outside.to_json())
    with pytest.raises(ValueError):
        ResultManifest.from_json(b'{"cache_key": "x"}')


async def _store_result(blobs: LocalBlobStore, key: str, created_at: float) -> None:
    prefix = result_prefix(key)
    await blobs.put_bytes(prefix + "vocals.mp3", b"music")
    manifest = ResultManifest(
        key, [OutputFile("vocals", prefix + "vocals.mp3", 5, "x")], 1.0, None, created_at=created_at
    )
    await blobs.put_bytes(prefix + MANIFEST_NAME, manifest.to_json())


async def test_shared_results_past_their_age_are_deleted_and_fresh_ones_kept(tmp_path: Path):
    blobs = LocalBlobStore(tmp_path / "blobs")
    now = 1_000_000.0
    await _store_result(blobs, "a" * 64, created_at=now - 25 * 3600)
    await _store_result(blobs, "b" * 64, created_at=now - 3600)
    await blobs.put_bytes(result_prefix("c" * 64) + MANIFEST_NAME, b"not json")
    await blobs.put_bytes("inputs/7.upload", b"a song still queued")
    assert await remove_expired_results(blobs, 24 * 3600, now=now) == 2
    assert await blobs.list_keys("") == [
        "inputs/7.upload",
        f"results/{'b' * 64}/manifest.json",
        f"results/{'b' * 64}/vocals.mp3",
    ]
