"""The distributed backend end to end: real PostgreSQL, worker processes, tiny models.

Every test starts ``karaoke-bot worker`` processes and talks to them through front-ends
built from config files, as an operator's hosts would; faults are real (SIGKILL).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bot.distributed.setup import blob_store
from bot.distributed.wire import input_key, progress_channel, progress_message
from bot.process.backend import build_pool, pool_config
from separation.errors import (
    JobCancelledError,
    PoolBusyError,
    PoolShutdownError,
    UserJobLimitError,
    WorkerLostError,
)
from separation.jobs import (
    Attempt,
    Cancelled,
    Done,
    JobHandle,
    Queued,
    Running,
)
from tests.support.fleet import ROOT, Fleet, kill, ledger, read, request, samples, wait_for

pytestmark = pytest.mark.slow


async def test_songs_of_several_users_come_back_as_the_local_backend_makes_them(fleet: Fleet, song):
    workers = [fleet.start_worker(), fleet.start_worker()]
    fleet.wait_until_ready(*workers)
    front = await fleet.frontend()
    songs = {("telegram:1", "a"): song(6, "a"), ("telegram:2", "b"): song(7, "b"),
             ("discord:3", "c"): song(8, "c")}  # fmt: skip
    handles = {key: await front.submit(request(path, key[0])) for key, path in songs.items()}
    results = {key: (await read(handle))[1] for key, handle in handles.items()}

    # The local backend as `karaoke-bot run` would build it from the same settings (the
    # same model, options and precision), with a cache of its own.
    settings = fleet.settings("local")
    local = build_pool(settings, dataclasses.replace(pool_config(settings), warm_up=False))
    await local.start()
    try:
        for key, path in songs.items():
            remote = results[key]
            expected = await (await local.submit(request(path, key[0]))).result()
            assert list(remote.outputs) == list(expected.outputs) == ["instrumental", "vocals"]
            assert remote.cache_key == expected.cache_key  # same model, same settings
            for name in expected.outputs:
                np.testing.assert_allclose(
                    samples(remote.outputs[name]), samples(expected.outputs[name]), atol=1e-4
                )
            assert remote.duration_seconds == pytest.approx(expected.duration_seconds)
            expected.release()
    finally:
        await local.shutdown(timeout=0)
    for result in results.values():
        result.release()
    await wait_for(lambda: not fleet.blob_files("inputs"))
    served_by = {line.split(" on ")[-1] for log in map(fleet.worker_log, workers)
                 for line in log.splitlines() if ": attempt 1 on " in line}  # fmt: skip
    assert len(served_by) == 2  # both workers took songs


async def test_a_worker_killed_mid_song_is_replaced_and_the_song_delivered_once(fleet: Fleet, song):
    first, second = fleet.start_worker(), fleet.start_worker()
    fleet.wait_until_ready(first, second)
    front = await fleet.frontend()
    handle = await front.submit(request(song(75, "long")))
    running = [event async for event in _until_running(handle)]
    assert running
    rows = await fleet.query("SELECT worker FROM separation_runs WHERE job_id = %s", handle.job_id)
    victim = first if str(rows[0][0]).split("-")[-2] == str(first.pid) else second
    kill(victim)
    events, result = await read(handle)
    assert isinstance(events[-1], Done)
    attempt, outcome = await ledger(fleet, handle.job_id)
    assert attempt == 2 and outcome is not None and '"done"' in outcome
    survivor = second if victim is first else first
    assert f"job {handle.job_id}: attempt 2 on" in fleet.worker_log(survivor)
    assert all(path.stat().st_size > 0 for path in result.outputs.values())
    result.release()
    await wait_for(lambda: not fleet.blob_files("inputs"))
    assert len(fleet.blob_files("results")) == 5  # one result: 2 files, 2 stems, a manifest


async def _until_running(handle: JobHandle):
    async for event in handle.events():
        yield event
        if isinstance(event, Running) and event.fraction > 0:
            return


async def test_a_song_whose_workers_keep_dying_fails_after_max_attempts(fleet: Fleet, song):
    fleet.max_attempts = 1
    front = await fleet.frontend()
    worker = fleet.start_worker()
    fleet.wait_until_ready(worker)
    handle = await front.submit(request(song(75, "doomed")))
    _ = [event async for event in _until_running(handle)]
    kill(worker)
    replacement = fleet.start_worker()
    fleet.wait_until_ready(replacement)
    with pytest.raises(WorkerLostError):
        await handle.result()
    log = fleet.worker_log(replacement)
    assert f"job {handle.job_id}: attempt 2 ended: failed" in log
    assert "no worker finished the job in 1 attempts" in log
    await wait_for(lambda: not fleet.blob_files("inputs"))


async def test_cancel_a_queued_song_and_a_running_one(fleet: Fleet, song):
    front = await fleet.frontend()
    queued = await front.submit(request(song(5, "queued")))
    await queued.cancel()  # no worker yet: it never runs
    with pytest.raises(JobCancelledError):
        await queued.result()
    assert isinstance(queued.state, Cancelled)

    worker = fleet.start_worker()
    fleet.wait_until_ready(worker)
    running = await front.submit(request(song(75, "running")))
    _ = [event async for event in _until_running(running)]
    await running.cancel()
    with pytest.raises(JobCancelledError):
        await running.result()
    assert f"job {running.job_id}: attempt 1 ended: cancelled" in fleet.worker_log(worker)
    assert f"{queued.job_id}: attempt" not in fleet.worker_log(worker)
    await wait_for(lambda: not fleet.blob_files("inputs"))


async def test_the_queue_and_per_user_limits_hold_across_two_frontends(fleet: Fleet, song):
    limits = "[pool]\nmax_queued_jobs = 3\nmax_jobs_per_user = 2\n"
    one = await fleet.frontend("front1", limits)
    two = await fleet.frontend("front2", limits)
    await one.submit(request(song(5, "u1a"), "telegram:1"))
    await two.submit(request(song(5, "u1b"), "telegram:1"))
    with pytest.raises(UserJobLimitError):  # the user's third song, on either front-end
        await one.submit(request(song(5, "u1c"), "telegram:1"))
    await one.submit(request(song(5, "u2a"), "telegram:2"))
    with pytest.raises(PoolBusyError):  # four songs would not fit the queue of three
        await two.submit(request(song(5, "u3a"), "telegram:3"))
    assert not fleet.blob_files("inputs/u1c") and len(fleet.blob_files("inputs")) == 3


async def test_users_take_turns_in_the_queue(fleet: Fleet, song):
    front = await fleet.frontend()
    first = [await front.submit(request(song(5 + i, f"a{i}"), "telegram:1")) for i in range(2)]
    other = await front.submit(request(song(9, "b0"), "telegram:2"))
    rows = await fleet.query(
        "SELECT args->>'job_id' FROM procrastinate_jobs WHERE queue_name = %s "
        "ORDER BY priority DESC, id ASC",
        fleet.queue,
    )
    order = [row[0] for row in rows]
    assert order == [first[0].job_id, other.job_id, first[1].job_id]


async def test_a_corrupt_cached_result_is_computed_again_never_served(fleet: Fleet, song):
    worker = fleet.start_worker()
    fleet.wait_until_ready(worker)
    front = await fleet.frontend()
    path = song(6, "twice")
    first = await (await front.submit(request(path))).result()
    good = {name: file.read_bytes() for name, file in first.outputs.items()}
    first.release()
    stored = [p for p in fleet.blob_files("results") if p.name == "instrumental.wav"]
    assert len(stored) == 1
    damaged = bytearray(stored[0].read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    stored[0].write_bytes(bytes(damaged))

    again = await (await front.submit(request(path))).result()
    assert {name: file.read_bytes() for name, file in again.outputs.items()} == good
    assert front.requeued_corrupt == 1
    again.release()


async def test_a_restarted_frontend_delivers_the_song_its_predecessor_lost(fleet: Fleet, song):
    front = await fleet.frontend()
    handle = await front.submit(request(song(6, "orphan"), job_id="job-4242"))
    await front.shutdown(timeout=0)  # the front-end goes away with the song in the queue
    fleet.frontends.remove(front)
    with pytest.raises(PoolShutdownError):  # the chat flow keeps such a job for a restart
        await handle.result()
    worker = fleet.start_worker()
    fleet.wait_until_ready(worker)
    restarted = await fleet.frontend("front-again")
    resumed = await restarted.submit(request(song(6, "orphan"), job_id="job-4242"))
    result = await resumed.result()
    assert set(result.outputs) == {"instrumental", "vocals"}
    rows = await fleet.query("SELECT count(*) FROM separation_runs WHERE job_id = %s", "job-4242")
    assert rows[0][0] == 1  # followed, not queued a second time
    result.release()
    await wait_for(lambda: not fleet.blob_files("inputs"))


async def test_a_song_deferred_by_a_front_end_killed_before_registering_it_is_followed(
    fleet: Fleet, song
):
    # A front-end SIGKILLed between deferring a song and registering it in the run
    # ledger leaves a waiting queue row and no ledger row: its successor must follow that
    # row. Deferring again is refused by the job's queueing lock (the CI failure of
    # test_frontend_restart[another]: "Something went wrong" for the third song).
    front = await fleet.frontend()
    await front.submit(request(song(6, "unregistered"), job_id="job-4343"))
    await front.shutdown(timeout=0)
    fleet.frontends.remove(front)
    deleted = await fleet.query(
        "DELETE FROM separation_runs WHERE job_id = %s RETURNING queue_job_id", "job-4343"
    )
    assert len(deleted) == 1
    successor = await fleet.frontend("successor")
    resumed = await successor.submit(request(song(6, "unregistered"), job_id="job-4343"))
    worker = fleet.start_worker()  # only now: a worker's start registers the row too
    fleet.wait_until_ready(worker)
    result = await resumed.result()
    assert set(result.outputs) == {"instrumental", "vocals"}
    rows = await fleet.query(
        "SELECT queue_job_id FROM separation_runs WHERE job_id = %s", "job-4343"
    )
    assert rows == deleted  # the dead front-end's queue job, followed, not a second one
    result.release()


async def test_a_worker_cut_off_mid_song_has_its_late_result_rejected(fleet: Fleet, song):
    # SIGSTOP silences a worker exactly as a cut network link does (no heartbeat, no
    # writes) and SIGCONT brings it back with its song half done.
    first, second = fleet.start_worker(), fleet.start_worker()
    fleet.wait_until_ready(first, second)
    front = await fleet.frontend()
    handle = await front.submit(request(song(75, "cut")))
    _ = [event async for event in _until_running(handle)]
    rows = await fleet.query("SELECT worker FROM separation_runs WHERE job_id = %s", handle.job_id)
    cut_off = first if f"-{first.pid}-" in str(rows[0][0]) else second
    cut_off.send_signal(signal.SIGSTOP)
    try:
        result = await handle.result()
    finally:
        cut_off.send_signal(signal.SIGCONT)
    other = second if cut_off is first else first
    assert f"job {handle.job_id}: attempt 2 ended: done" in fleet.worker_log(other)
    await wait_for(lambda: "was superseded" in fleet.worker_log(cut_off), 120)
    assert f"job {handle.job_id}: attempt 1 ended" not in fleet.worker_log(cut_off)
    attempt, outcome = await ledger(fleet, handle.job_id)
    assert attempt == 2 and outcome is not None and '"done"' in outcome
    result.release()
    # The stale attempt ends quietly: one line says it was superseded, and nothing at
    # ERROR level (issue 21 item 2), up to and including the worker's own exit.
    await wait_for(lambda: "ended with status" in fleet.worker_log(cut_off))  # procrastinate's
    cut_off.send_signal(signal.SIGTERM)
    await asyncio.to_thread(cut_off.wait, 60)
    errors = [line for line in fleet.worker_log(cut_off).splitlines() if " ERROR " in line]
    assert errors == []
    assert "Task exception was never retrieved" not in fleet.worker_log(cut_off)
    assert "left to the attempt that superseded this one" in fleet.worker_log(cut_off)


async def test_songs_travel_through_a_real_s3_server(fleet: Fleet, song, s3_server):
    fleet.s3 = s3_server
    worker = fleet.start_worker()
    fleet.wait_until_ready(worker)
    front = await fleet.frontend()
    first = await front.submit(request(song(6, "s3a"), "telegram:1"))
    second = await front.submit(request(song(7, "s3b"), "telegram:2"))
    for handle in (first, second):
        result = await handle.result()
        assert set(result.outputs) == {"instrumental", "vocals"}
        assert all(path.stat().st_size > 1000 for path in result.outputs.values())
        result.release()
    assert "s3 " in front.describe_blobs() and s3_server.secret_access_key not in str(
        fleet.settings("front")
    )
    store = blob_store(fleet.settings("inspector"))
    try:
        for handle in (first, second):  # the uploads are deleted once delivered
            key = input_key(handle.job_id)
            await wait_for_async(lambda key=key: _gone(store, key))
    finally:
        await store.close()


async def _gone(store, key: str) -> bool:
    return not await store.exists(key)


async def wait_for_async(condition, seconds: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


async def test_a_queued_song_gets_a_wait_estimate_once_the_fleet_was_measured(fleet: Fleet, song):
    worker = fleet.start_worker()  # takes 2 songs at once (worker_concurrency = 2)
    fleet.wait_until_ready(worker)
    front = await fleet.frontend()
    measured = await (await front.submit(request(song(6, "first")))).result()
    measured.release()
    busy = [await front.submit(request(song(70 + i, f"busy{i}"), f"telegram:{i}")) for i in (1, 2)]
    waiting = await front.submit(request(song(5, "waiting"), "telegram:3"))
    estimates = []
    async for event in waiting.events():
        if isinstance(event, Queued):
            estimates.append(event)
            break
    [queued] = estimates
    assert queued.position == 1 and queued.eta_seconds is not None and queued.eta_seconds > 0
    for handle in [*busy, waiting]:
        await handle.cancel()


async def test_identical_songs_sent_together_run_once_in_the_fleet(fleet: Fleet, song):
    workers = [fleet.start_worker(), fleet.start_worker()]
    fleet.wait_until_ready(*workers)
    front = await fleet.frontend()
    path = song(8, "same")
    handles = [await front.submit(request(path, f"telegram:{n}")) for n in (1, 2)]
    results = [await handle.result() for handle in handles]
    assert sorted(result.cache_hit for result in results) == [False, True]
    assert results[0].outputs["vocals"].read_bytes() == results[1].outputs["vocals"].read_bytes()
    for result in results:
        result.release()
    logs = "".join(map(fleet.worker_log, workers))
    outcomes = logs.count("ended: done")
    served_from_a_cache = logs.count("served from the shared result cache") + logs.count(
        ": cache hit"
    )
    assert (outcomes, outcomes - served_from_a_cache) == (2, 1)  # one model run


async def test_a_new_worker_serves_another_workers_result_from_the_shared_cache(fleet: Fleet, song):
    first = fleet.start_worker()
    fleet.wait_until_ready(first)
    front = await fleet.frontend()
    path = song(7, "shared")
    computed = await (await front.submit(request(path, "telegram:1"))).result()
    computed.release()
    kill(first)  # its own disk cache goes with it
    second = fleet.start_worker()
    fleet.wait_until_ready(second)
    again = await (await front.submit(request(path, "telegram:2"))).result()
    assert again.cache_hit and again.cache_key == computed.cache_key
    assert "served from the shared result cache" in fleet.worker_log(second)
    again.release()


def test_the_separate_command_runs_songs_through_the_fleet(fleet: Fleet, song, tmp_path: Path):
    worker = fleet.start_worker()
    fleet.wait_until_ready(worker)
    config = fleet.config("cli")
    completed = subprocess.run(
        [sys.executable, "-m", "bot.cli.main", "separate", str(song(5, "cli")), "-o",
         str(tmp_path / "out"), "--config", str(config), "-v"],
        capture_output=True, text=True, timeout=60, check=False, cwd=fleet.root,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-2000:]
    written = sorted(Path(line).name for line in completed.stdout.split("\n") if line)
    assert written == ["cli - instrumental.wav", "cli - vocals.wav"]
    assert "attempt 1 ended: done" in fleet.worker_log(worker)


async def test_a_restarted_worker_removes_the_upload_copy_its_killed_predecessor_left(
    fleet: Fleet, song
):
    worker = fleet.start_worker()
    fleet.wait_until_ready(worker)
    front = await fleet.frontend()
    handle = await front.submit(request(song(75, "copy")))
    assert [event async for event in _until_running(handle)]
    inputs = fleet.root / "worker0" / "tmp" / "worker-inputs"
    [left] = [folder for folder in inputs.iterdir() if (folder / "input.upload").exists()]
    kill(worker)
    assert (left / "input.upload").exists()
    again = fleet.start_worker(name="worker0")  # same data folder: the same host again
    fleet.wait_until_ready(again)
    assert not left.exists()
    assert f"removed {left} left by a process that died" in fleet.worker_log(again)
    events, result = await read(handle)  # and the song itself is done by the new worker
    assert isinstance(events[-1], Done)
    result.release()


async def test_users_see_only_the_current_attempt_s_progress_and_never_backwards(
    fleet: Fleet, song
):
    """Issue 21 item 2: "86%" -> "43%" -> "53%" came from a superseded attempt's worker,
    resumed, reporting after its successor. The notices go through PostgreSQL as the
    workers send them; no worker runs, so the song stays in the queue meanwhile."""
    front = await fleet.frontend()
    handle = await front.submit(request(song(6, "notes")))
    seen: list[object] = []

    async def follow() -> None:
        async for event in handle.events():
            if isinstance(event, Attempt | Running):
                seen.append(event)

    follower = asyncio.create_task(follow())
    notices = [
        (1, 0.43), (1, 0.86), (1, 0.80),  # the first worker; a late lower one
        (2, 0.10),  # the first worker presumed dead: another starts again
        (1, 0.90),  # the first one resumed (SIGCONT), still reporting its attempt
        (2, 0.05), (2, 0.53),
    ]  # fmt: skip
    channel = progress_channel(fleet.queue)
    for attempt, fraction in notices:
        message = progress_message(handle.job_id, attempt, Running(fraction, None))
        await fleet.query("SELECT pg_notify(%s, %s)", channel, message)
    await wait_for(lambda: Running(0.53, None) in seen, 30)
    follower.cancel()
    shown = [(type(e).__name__, getattr(e, "fraction", getattr(e, "number", None))) for e in seen]
    assert shown == [
        ("Attempt", 1), ("Running", 0.43), ("Running", 0.86),
        ("Attempt", 2), ("Running", 0.10), ("Running", 0.53),
    ]  # fmt: skip


async def test_a_restarted_front_end_removes_the_results_its_killed_predecessor_downloaded(
    fleet: Fleet,
):
    """A front-end killed between downloading a result and sending it leaves the files in
    ``tmp/deliveries``; the next start (same data folder) removes them, and leaves alone
    the folder another live process on that data folder holds."""
    deliveries = fleet.root / "front" / "tmp" / "deliveries"
    deliveries.mkdir(parents=True)
    create = (
        "import sys; from pathlib import Path; from separation.workdir import JobFolder;"
        "f = JobFolder.create(Path(sys.argv[1]), '7-'); (f.path / 'vocals.mp3').write_bytes(b'x');"
        "print(f.path, flush=True); sys.stdin.read()"
    )

    def holder() -> tuple[subprocess.Popen[bytes], Path]:
        process = subprocess.Popen(
            [sys.executable, "-c", create, str(deliveries)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT,
        )  # fmt: skip
        assert process.stdout is not None
        return process, Path(process.stdout.readline().decode().strip())

    dead, left = holder()
    kill(dead)
    alive, held = holder()
    try:
        await fleet.frontend("front")
        assert not left.exists()
        assert (held / "vocals.mp3").exists()
    finally:
        kill(alive)
