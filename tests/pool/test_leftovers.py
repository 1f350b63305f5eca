"""What a killed process leaves behind is swept; what a live one uses is not; results being
delivered stay; every folder is private whatever the umask."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from separation.cache.results import CachePolicy, ResultCache
from separation.jobs import Decoded, Done
from separation.workdir import JobFolder, job_directory, sweep_abandoned
from tests.support.pool import frames_of, job_folders, request

PROJECT = Path(__file__).resolve().parents[2]


def _job_folder_in_another_process(tmp_root: Path) -> tuple[subprocess.Popen[str], Path]:
    """A process that takes a job folder (as the pool does), fills it, and waits."""
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from separation.workdir import JobFolder
        folder = JobFolder.create(Path({str(tmp_root)!r}))
        (folder.path / "input.f32").write_bytes(b"\\0" * 3_000_000)
        print(folder.path, flush=True)
        sys.stdin.read()  # until killed, or told to finish
        folder.remove()
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=PROJECT,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
    )  # fmt: skip
    assert process.stdout is not None
    return process, Path(process.stdout.readline().strip())


@pytest.fixture
def umask_zero() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


async def test_a_killed_process_job_folder_is_swept_at_start(make_pool, tmp_path, caplog):
    tmp_root = tmp_path / "tmp"
    killed, abandoned = _job_folder_in_another_process(tmp_root)
    alive, in_use = _job_folder_in_another_process(tmp_root)
    try:
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=10)
        assert abandoned.exists()
        await make_pool()
        assert not abandoned.exists()
        assert in_use.exists() and (in_use / "input.f32").stat().st_size == 3_000_000
        assert f"removed {abandoned} left by a process that died (3.0 MB)" in caplog.text
    finally:
        alive.communicate("", timeout=10)
    assert not in_use.exists()  # its owner finished and removed it


def test_a_sweep_leaves_folders_of_this_process_alone(tmp_path):
    with job_directory(tmp_path) as mine:
        assert sweep_abandoned(tmp_path) == []
        assert mine.exists()
    assert job_folders(tmp_path) == []


def test_a_sweep_running_all_the_time_never_removes_a_live_folder(tmp_path):
    """A pool's sweep runs while jobs start: a folder must be locked before it is seen.

    Creating the owner file and locking it were two steps; a sweep in between won the
    lock and removed a live job's folder (about one in four here, within seconds).
    """
    stop = threading.Event()
    swept: list[Path] = []

    def sweep_continuously() -> None:
        while not stop.is_set():
            swept.extend(folder.path for folder in sweep_abandoned(tmp_path))

    sweeper = threading.Thread(target=sweep_continuously)
    sweeper.start()
    removed_while_alive = created = 0
    try:
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            folder = JobFolder.create(tmp_path)
            created += 1
            removed_while_alive += not (folder.path / ".owner").exists()
            folder.remove()
    finally:
        stop.set()
        sweeper.join(timeout=10)
    assert created > 100
    assert removed_while_alive == 0 and swept == []


async def test_the_decoded_length_is_published_before_the_model_runs(make_pool, clips):
    pool = await make_pool()
    handle = await pool.submit(request(clips[3]))
    events = [event async for event in handle.events()]
    decoded = [event for event in events if isinstance(event, Decoded)]
    assert decoded == [Decoded(frames_of(3) / 44100)]
    assert isinstance(events[-1], Done)
    assert events.index(decoded[0]) < len(events) - 1


async def test_results_stay_pinned_until_every_caller_released_them(make_pool, clips, tmp_path):
    pool = await make_pool(cache=CachePolicy(max_bytes=0, min_age_seconds=0))
    first, second = [await pool.submit(request(clips[5], user=user)) for user in ("a", "b")]
    results = [await first.result(), await second.result()]
    # One ran the model; the other joined it or hit its entry (whichever hashed first
    # owns the run): one entry, two pins.
    assert sorted(result.cache_hit for result in results) == [False, True]
    sweeper = ResultCache(tmp_path / "cache", CachePolicy(max_bytes=0, min_age_seconds=0))
    assert sweeper.evict() == []
    results[0].release()
    assert sweeper.evict() == []  # the second caller still delivers
    assert all(path.exists() for path in results[1].outputs.values())
    results[1].release()
    sweeper.evict()  # the pool's own eviction thread may get there first: either is fine
    assert not any(path.exists() for path in results[1].outputs.values())


async def test_every_folder_the_pool_writes_is_private_whatever_the_umask(
    make_pool, clips, tmp_path, umask_zero
):
    pool = await make_pool(tmp_root=tmp_path / "fresh" / "tmp", cache_dir=tmp_path / "c" / "d")
    result = await (await pool.submit(request(clips[3]))).result()
    result.release()
    folders = [tmp_path / "fresh", tmp_path / "fresh" / "tmp", tmp_path / "c", tmp_path / "c" / "d"]
    folders += [path for path in (tmp_path / "c" / "d").rglob("*") if path.is_dir()]
    modes = {str(path.relative_to(tmp_path)): oct(path.stat().st_mode & 0o777) for path in folders}
    assert set(modes.values()) == {"0o700"}, modes
