"""The pool end to end: real decoding, tiny models, rendering and the cache on disk."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
import torch

from separation.audio.encode import EncodingSpec
from separation.errors import (
    JobCancelledError,
    JobFailedError,
    JobTimeoutError,
    NotAudioError,
    OutOfMemoryError,
    OutputTooLargeError,
    PoolBusyError,
    PoolShutdownError,
    UserJobLimitError,
)
from separation.jobs import Cancelled, Done, Failed, Queued, Running
from separation.model.engine import run_batch
from separation.model.loading import LoadedModel
from separation.pipeline import PipelineConfig, Song, separate_file
from tests.support.pool import (
    WAV,
    CountingRunner,
    FailingRunner,
    first_event,
    frames_of,
    job_folders,
    out_of_memory,
    read_audio,
    request,
    wait_for,
)

TOLERANCE = 1e-4


def _is_running(event: object) -> bool:
    return isinstance(event, Running) and event.fraction > 0


async def test_songs_submitted_together_match_the_single_song_pipeline(
    make_pool, clips, tmp_path, ffmpeg, loaded_models
):
    runner = CountingRunner()
    pool = await make_pool(runner=runner)
    handles = [await pool.submit(request(clips[seconds], user=f"u{seconds}")) for seconds in (3, 5)]
    results = await asyncio.gather(*(handle.result() for handle in handles))
    assert max(runner.batches) > 1  # songs shared forward passes
    model: LoadedModel = loaded_models[("tiny", "cpu")]
    config = PipelineConfig(ffmpeg=ffmpeg, tmp_root=tmp_path / "reference")
    for seconds, result in zip((3, 5), results, strict=True):
        assert list(result.outputs) == ["instrumental", "vocals"]
        assert result.duration_seconds == pytest.approx(seconds, abs=0.01)
        assert not result.cache_hit and result.bitrate_kbps is None
        folder = tmp_path / f"reference-{seconds}"
        folder.mkdir()
        reference = await separate_file(
            Song(clips[seconds], encoding=WAV), folder, model=model, config=config
        )
        for name, path in result.outputs.items():
            ours = read_audio(path, ffmpeg)
            theirs = read_audio(reference.outputs[name], ffmpeg)
            assert ours.shape == theirs.shape
            assert float(np.abs(ours - theirs).max()) < TOLERANCE
    assert job_folders(tmp_path / "tmp") == []


async def test_progress_events_of_one_job(make_pool, clips):
    pool = await make_pool(batch_size=1)
    handle = await pool.submit(request(clips[7], job_id="row-17"))
    events = [event async for event in handle.events()]
    assert handle.job_id == "row-17"
    assert isinstance(events[0], Running) and events[0].fraction == 0.0
    fractions = [event.fraction for event in events if isinstance(event, Running)]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any(e.eta_seconds is not None for e in events if isinstance(e, Running))
    assert isinstance(events[-1], Done) and events[-1].result == await handle.result()
    assert [event async for event in handle.events()] == [events[-1]]  # late reader


async def test_queued_jobs_learn_their_position_and_wait(make_pool, clips):
    pool = await make_pool(runner=CountingRunner(delay=0.2), max_running_jobs=1, warm_up=True)
    first = await pool.submit(request(clips[5], user="a"))
    await first_event(first)
    second = await pool.submit(request(clips[3], user="b"))
    await first_event(second)
    third = await pool.submit(request(clips[3], user="c", fallback_title="other"))
    await first_event(third)
    queued = [second.state, third.state]
    assert [event.position for event in queued] == [1, 2]  # type: ignore[union-attr]
    assert 0 < queued[0].eta_seconds < queued[1].eta_seconds  # type: ignore[union-attr,operator]
    assert pool.queue_length == 2
    moved = await wait_for(third, lambda e: isinstance(e, Queued) and e.position == 1)
    assert isinstance(moved, Queued)
    await asyncio.gather(first.result(), second.result(), third.result())


async def test_round_robin_between_users(make_pool, clips):
    pool = await make_pool(runner=CountingRunner(delay=0.05), max_running_jobs=1, batch_size=1)
    started: list[str] = []
    handles = []
    for user, title in (("a", "a1"), ("a", "a2"), ("a", "a3"), ("b", "b1"), ("c", "c1")):
        handle = await pool.submit(request(clips[3], user=user, fallback_title=title))
        await first_event(handle)  # hashed and queued before the next one arrives
        handles.append(handle)

    async def record_start(handle) -> None:
        await wait_for(handle, lambda event: isinstance(event, Running))
        started.append(handle.request.fallback_title)

    await asyncio.gather(*(record_start(handle) for handle in handles))
    assert started == ["a1", "b1", "c1", "a2", "a3"]
    await asyncio.gather(*(handle.result() for handle in handles))


async def test_cancel_a_queued_job(make_pool, clips):
    runner = CountingRunner(delay=0.1)
    pool = await make_pool(runner=runner, max_running_jobs=1, batch_size=1)
    running = await pool.submit(request(clips[5], user="a"))
    await first_event(running)
    queued = await pool.submit(request(clips[3], user="b"))
    assert isinstance(await first_event(queued), Queued)
    await queued.cancel()
    assert isinstance(queued.state, Cancelled) and pool.queue_length == 0
    with pytest.raises(JobCancelledError):
        await queued.result()
    await running.result()
    assert runner.segments == 2  # only the 5-second song's two segments ran
    assert pool.active_jobs("b") == 0


async def test_cancel_a_running_job_and_keep_serving(make_pool, clips, tmp_path):
    runner = CountingRunner(delay=0.2)
    pool = await make_pool(runner=runner, batch_size=1)
    handle = await pool.submit(request(clips[9]))
    await wait_for(handle, _is_running)
    await handle.cancel()
    assert isinstance(handle.state, Cancelled)
    with pytest.raises(JobCancelledError) as caught:
        await handle.result()
    assert caught.value.kind == "cancelled"
    assert runner.segments < 4 and job_folders(tmp_path / "tmp") == []
    assert list((tmp_path / "cache").glob("??/*")) == []
    again = await pool.submit(request(clips[3]))
    assert (await again.result()).outputs["instrumental"].exists()


async def test_busy_and_per_user_limits_fail_at_once(make_pool, clips):
    pool = await make_pool(
        runner=CountingRunner(delay=0.2),
        max_running_jobs=1,
        max_queued_jobs=1,
        max_jobs_per_user=2,
    )
    running = await pool.submit(request(clips[5], user="a"))
    await first_event(running)
    queued = await pool.submit(request(clips[3], user="a"))
    with pytest.raises(UserJobLimitError) as limit:
        await pool.submit(request(clips[7], user="a"))
    assert limit.value.kind == "user_limit"
    assert limit.value.user_message == (
        "You already have 2 songs in progress; wait for one to finish."
    )
    with pytest.raises(PoolBusyError) as busy:
        await pool.submit(request(clips[7], user="b"))
    assert busy.value.kind == "busy" and busy.value.retry_after_seconds >= 5
    assert "try again" in busy.value.user_message
    assert pool.active_jobs("a") == 2 and pool.active_jobs("b") == 0
    await queued.cancel()
    await running.cancel()


async def test_a_repeated_song_is_served_from_the_cache(make_pool, clips):
    runner = CountingRunner()
    pool = await make_pool(runner=runner)
    first = await (await pool.submit(request(clips[3], user="a"))).result()
    ran = runner.segments
    started = time.monotonic()
    second = await (await pool.submit(request(clips[3], user="b"))).result()
    assert second.cache_hit and not first.cache_hit
    assert runner.segments == ran and time.monotonic() - started < 2
    assert second.outputs == first.outputs
    other_format = await pool.submit(
        request(clips[3], encoding=EncodingSpec(format="mp3", bitrate_kbps=128))
    )
    assert not (await other_format.result()).cache_hit  # the encoding is part of the key


async def test_identical_songs_submitted_together_run_once(make_pool, clips):
    runner = CountingRunner(delay=0.05)
    pool = await make_pool(runner=runner, batch_size=1)
    handles = [await pool.submit(request(clips[5], user=f"u{index}")) for index in range(3)]
    await wait_for(handles[2], lambda event: isinstance(event, Running))
    await handles[1].cancel()  # one caller leaving does not stop the others
    results = await asyncio.gather(handles[0].result(), handles[2].result())
    assert runner.segments == 2  # one run of the 5-second song
    assert results[0].outputs == results[1].outputs
    assert sorted(result.cache_hit for result in results) == [False, True]
    assert isinstance(handles[1].state, Cancelled)


async def test_a_corrupt_cache_entry_is_recomputed(make_pool, clips, ffmpeg):
    runner = CountingRunner()
    pool = await make_pool(runner=runner)
    first = await (await pool.submit(request(clips[3]))).result()
    vocals = first.outputs["vocals"]
    vocals.write_bytes(vocals.read_bytes()[:1000])  # truncated on disk
    ran = runner.segments
    second = await (await pool.submit(request(clips[3]))).result()
    assert not second.cache_hit and runner.segments == 2 * ran
    assert read_audio(second.outputs["vocals"], ffmpeg).shape[1] == frames_of(3)


async def test_an_unexpected_exception_fails_that_job_alone(make_pool, clips):
    def breaks_the_five_second_song(segments) -> bool:
        return any(segment.job.audio.frames == frames_of(5) for segment in segments)

    runner = FailingRunner(breaks_the_five_second_song, lambda: ValueError("model bug"))
    pool = await make_pool(runner=runner)
    handles = [await pool.submit(request(clips[s], user=f"u{s}")) for s in (3, 5)]
    outcomes = await asyncio.gather(*(h.result() for h in handles), return_exceptions=True)
    assert isinstance(outcomes[1], JobFailedError) and outcomes[1].kind == "internal"
    assert isinstance(outcomes[1].__cause__, ValueError)
    assert "model bug" in str(outcomes[1])
    assert isinstance(handles[1].state, Failed)
    assert not isinstance(outcomes[0], Exception)
    later = await pool.submit(request(clips[3], fallback_title="again"))  # still serving
    assert not (await later.result()).cache_hit


async def test_a_job_over_its_time_limit_fails_and_frees_its_slot(make_pool, clips, tmp_path):
    def slow_for_the_long_song(model, segments):
        if segments[0].job.audio.frames == frames_of(9):
            time.sleep(1.0)
        return run_batch(model, segments)

    pool = await make_pool(
        runner=slow_for_the_long_song, batch_size=1, job_timeout_seconds=2.0, max_running_jobs=1
    )
    slow = await pool.submit(request(clips[9]))
    with pytest.raises(JobTimeoutError) as caught:
        await slow.result()
    assert caught.value.kind == "timeout" and caught.value.limit_seconds == 2.0
    assert job_folders(tmp_path / "tmp") == []
    quick = await pool.submit(request(clips[3]))
    assert (await quick.result()).outputs


async def test_shutdown_finishes_running_jobs_and_reports_the_rest(make_pool, clips):
    pool = await make_pool(runner=CountingRunner(delay=0.1), max_running_jobs=1, batch_size=1)
    running = await pool.submit(request(clips[5], user="a"))
    await first_event(running)
    waiting = [await pool.submit(request(clips[3], user=user)) for user in ("b", "c")]
    for handle in waiting:
        await first_event(handle)
    not_done = await pool.shutdown(timeout=30)
    assert isinstance(running.state, Done)
    assert not_done == waiting
    for handle in waiting:
        assert isinstance(handle.state, Failed)
        with pytest.raises(PoolShutdownError):
            await handle.result()
    with pytest.raises(PoolShutdownError):
        await pool.submit(request(clips[7]))


async def test_shutdown_timeout_stops_a_job_that_runs_too_long(make_pool, clips, tmp_path):
    pool = await make_pool(runner=CountingRunner(delay=0.3), batch_size=1)
    running = await pool.submit(request(clips[9]))
    await wait_for(running, _is_running)
    assert await pool.shutdown(timeout=0.1) == [running]
    assert isinstance(running.state, Failed)
    assert isinstance(running.state.error, PoolShutdownError)
    assert job_folders(tmp_path / "tmp") == []


async def test_out_of_memory_retries_smaller_batches(make_pool, clips):
    runner = FailingRunner(lambda segments: len(segments) > 1, out_of_memory)
    pool = await make_pool(runner=runner)
    handles = [await pool.submit(request(clips[s], user=f"u{s}")) for s in (3, 5)]
    for handle in handles:
        assert (await handle.result()).outputs
    assert runner.failures >= 1 and set(runner.batches) == {1}


async def test_out_of_memory_on_one_segment_retries_shorter_segments(make_pool, clips, ffmpeg):
    # The tiny model's segments are 4 s; pretend only 2-second ones fit.
    runner = FailingRunner(lambda segs: segs[0].valid_length > frames_of(3), out_of_memory)
    pool = await make_pool(runner=runner)
    result = await (await pool.submit(request(clips[5]))).result()
    assert runner.failures >= 1 and runner.segments >= 3
    assert read_audio(result.outputs["vocals"], ffmpeg).shape[1] == frames_of(5)


async def test_a_job_that_never_fits_fails_alone_with_out_of_memory(make_pool, clips):
    def the_three_second_song(segments) -> bool:
        return any(segment.job.audio.frames == frames_of(3) for segment in segments)

    pool = await make_pool(runner=FailingRunner(the_three_second_song, out_of_memory))
    doomed = await pool.submit(request(clips[3], user="a"))
    fine = await pool.submit(request(clips[5], user="b"))
    with pytest.raises(OutOfMemoryError) as caught:
        await doomed.result()
    assert caught.value.kind == "out_of_memory"
    assert (await fine.result()).outputs


async def test_mp3_bitrate_fits_the_size_budget_before_the_model_runs(make_pool, clips):
    runner = CountingRunner()
    pool = await make_pool(runner=runner)
    mp3 = EncodingSpec(format="mp3", bitrate_kbps=320)
    too_small = await pool.submit(request(clips[5], encoding=mp3, max_output_bytes=20_000))
    with pytest.raises(OutputTooLargeError):
        await too_small.result()
    assert runner.segments == 0
    budget = 5 * 128_000 // 8 + 20_000  # five seconds at 128 kb/s plus headers
    fitted = await (
        await pool.submit(request(clips[5], encoding=mp3, max_output_bytes=budget))
    ).result()
    assert fitted.bitrate_kbps == 128
    assert all(path.stat().st_size <= budget for path in fitted.outputs.values())


async def test_a_bad_upload_fails_with_the_input_error(make_pool, tmp_path):
    pool = await make_pool()
    text = tmp_path / "upload-1.mp3"
    text.write_text("this is not audio")
    handle = await pool.submit(request(text))
    with pytest.raises(NotAudioError):
        await handle.result()
    assert isinstance(handle.state, Failed) and handle.state.error.kind == "not_audio"


async def test_the_event_loop_stays_responsive_during_inference(make_pool, clips):
    runner = CountingRunner()
    pool = await make_pool(runner=runner, batch_size=2)
    handle = await pool.submit(request(clips[9]))
    worst = 0.0
    while not handle.done:
        before = time.perf_counter()
        await asyncio.sleep(0.01)  # what a chat handler waiting for its turn looks like
        worst = max(worst, time.perf_counter() - before - 0.01)
    await handle.result()
    assert runner.segments == 3
    assert worst < 0.1, f"the loop stalled for {worst * 1000:.0f} ms"


async def test_two_workers_on_one_device_share_the_queue(make_pool, clips):
    runner = CountingRunner(delay=0.05)
    pool = await make_pool(runner=runner, devices=(torch.device("cpu"),) * 2, batch_size=1)
    handles = [await pool.submit(request(clips[s], user=f"u{s}")) for s in (3, 5)]
    await asyncio.gather(*(handle.result() for handle in handles))
    assert runner.segments == 3
    assert runner.threads == {"worker-0-cpu", "worker-1-cpu"}


async def test_the_model_is_loaded_and_warmed_up_before_the_first_song(make_pool, clips):
    pool = await make_pool(runner=CountingRunner(), warm_up=True)
    assert set(pool.startup_seconds) == {"load cpu", "warm-up cpu"}
    assert all(seconds > 0 for seconds in pool.startup_seconds.values())
    result = await (await pool.submit(request(clips[3], user="a"))).result()
    assert set(result.outputs) == {"instrumental", "vocals"}
