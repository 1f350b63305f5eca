"""The distributed backend (queue + ``karaoke-bot worker``) versus the local one, on one host.

Everything runs here: a fresh PostgreSQL database (created on --postgres-url's server,
migrated, dropped at the end), a local blob folder, random models saved in a temporary
--repo folder, and ``karaoke-bot worker`` processes started from config files exactly as
an operator would. Songs are excerpts of ../shared/data/lets-go-fishin.ogg at different
offsets, so each is a different song. Each side (and each part) gets its own data folder,
result cache, blob folder and queue: nothing is ever a cache hit.

1. Throughput: --songs songs of --seconds s submitted together to a local pool
   (``bot.process.backend.build_pool``, the worker's own pool settings: batch size, max running
   jobs = worker_concurrency) versus one worker process behind the queue; wall time from
   the first submit to the last result delivered (the distributed side downloads and
   checks the files). Default model: a random model of the exact ``htdemucs``
   architecture; ``--architecture tiny`` is much faster.
2. Per-job overhead (tiny model): --overhead-songs short songs one after another:
   submit -> first ``Running``, and the worker recording the outcome -> result delivered
   (files downloaded and checked), versus the local pool's submit -> first ``Running``.
3. Failover (tiny model, two workers, the queue timing of ``bot.settings.QueueSettings``
   defaults): SIGKILL the worker running a long song once it reports progress; time
   until attempt 2 starts on the other worker, and until the result arrives.

    python benchmarks/distributed_benchmark.py
    python benchmarks/distributed_benchmark.py --architecture tiny --seconds 15
    python benchmarks/distributed_benchmark.py --skip-throughput --overhead-songs 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import torch  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bot.distributed.frontend import DistributedBackend  # noqa: E402
from bot.distributed.postgres import psycopg_conninfo  # noqa: E402
from bot.distributed.setup import distributed_backend  # noqa: E402
from bot.distributed.wire import progress_channel, read_progress_message  # noqa: E402
from bot.process.backend import build_pool, configure_torch, worker_pool_config  # noqa: E402
from bot.process.wiring import encoding_spec  # noqa: E402
from bot.settings import QueueSettings, Settings, load_settings  # noqa: E402
from separation.audio.ffmpeg import find_ffmpeg  # noqa: E402
from separation.jobs import JobHandle, JobResult, Running, SeparationRequest  # noqa: E402
from separation.model.random_models import (  # noqa: E402
    HTDEMUCS_KWARGS,
    TINY_HTDEMUCS_KWARGS,
    build_htdemucs,
    save_repo_model,
)
from separation.pool import SeparationPool  # noqa: E402
from storage.db import open_database  # noqa: E402
from storage.migrate import upgrade  # noqa: E402

SHARED_DATA = ROOT.parent / "shared" / "data"
MUSIC = SHARED_DATA / "lets-go-fishin.ogg"  # 2:13
WORKER_READY = "taking songs from queue"
DEFAULT_POSTGRES = os.environ.get(
    "KARAOKE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


def cut(ffmpeg: str, start: float, seconds: float, target: Path) -> Path:
    """``seconds`` of the song from ``start`` as an MP3 upload (looping past its end)."""
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "fatal", "-stream_loop", "-1", "-ss", str(start),
         "-i", str(MUSIC), "-t", str(seconds), "-map", "0:a:0", "-c:a", "libmp3lame",
         "-b:a", "192k", "-y", str(target)],
        check=True,
    )  # fmt: skip
    return target


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.0f} ms"


def summary(values: list[float]) -> str:
    return f"median {ms(statistics.median(values))}  max {ms(max(values))}"


# -- the fleet ------------------------------------------------------------------------------
@dataclass
class Bench:
    """The temporary database, folders and worker processes; :meth:`close` removes them."""

    scratch: Path
    admin_url: str
    ffmpeg: str
    threads: int
    output_format: str | None
    database_url: str = ""
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: dict[int, Path] = field(default_factory=dict)

    # The database -----------------------------------------------------------------------
    def create_database(self) -> None:
        name = f"karaoke_bench_{os.getpid()}_{secrets.token_hex(4)}"
        with psycopg.connect(psycopg_conninfo(self.admin_url), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
        self.database_url = (
            make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)
        )

        async def migrate() -> None:
            database = open_database(self.database_url)
            try:
                await upgrade(database)
            finally:
                await database.close()

        asyncio.run(migrate())

    def drop_database(self) -> None:
        if not self.database_url:
            return
        name = make_url(self.database_url).database
        with psycopg.connect(psycopg_conninfo(self.admin_url), autocommit=True) as connection:
            connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            connection.execute(f'DROP DATABASE IF EXISTS "{name}"')  # type: ignore[arg-type]
        self.database_url = ""

    async def query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        conninfo = psycopg_conninfo(self.database_url)
        async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as connection:
            cursor = await connection.execute(sql, params)  # type: ignore[arg-type]
            return list(await cursor.fetchall())

    # Config files -----------------------------------------------------------------------
    def config(
        self, name: str, *, queue: str, model: str, repo: Path, concurrency: int, batch_size: int
    ) -> Path:
        """One process's config: its own data folder; the queue's blob folder. The queue's
        timing is left at the defaults of ``QueueSettings`` (what an operator gets)."""
        output = f'[output]\nformat = "{self.output_format}"\n' if self.output_format else ""
        path = self.scratch / f"{name}.toml"
        path.write_text(
            f"""
[general]
data_dir = "{self.scratch / name}"
[model]
name = "{model}"
repo = "{repo}"
cpu_threads = {self.threads}
[database]
url = "{self.database_url}"
[backend]
kind = "distributed"
[blobs]
kind = "local"
path = "{self.scratch / f"blobs-{queue}"}"
[queue]
name = "{queue}"
worker_concurrency = {concurrency}
[pool]
batch_size = {batch_size}
{output}"""
        )
        return path

    # Workers ----------------------------------------------------------------------------
    def start_worker(self, config: Path) -> subprocess.Popen[bytes]:
        log = config.with_suffix(".log")
        environment = {k: v for k, v in os.environ.items() if not k.startswith("KARAOKE_")}
        environment["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(ROOT), environment.get("PYTHONPATH")])
        )
        with log.open("wb") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "bot.cli.main", "worker", "-v", "--config", str(config)],
                stdout=output,
                stderr=subprocess.STDOUT,
                env=environment,
                cwd=self.scratch,
            )
        self.workers.append(process)
        self.logs[process.pid] = log
        return process

    def log(self, process: subprocess.Popen[bytes]) -> str:
        return self.logs[process.pid].read_text(errors="replace")

    async def wait_until_ready(self, *processes: subprocess.Popen[bytes], limit: float) -> float:
        """Until each worker has loaded (and warmed up) its model; returns the seconds."""
        started = time.perf_counter()
        for process in processes:
            while WORKER_READY not in self.log(process):
                if process.poll() is not None:
                    log = self.log(process)
                    raise RuntimeError(f"worker exited ({process.returncode}):\n{log}")
                if time.perf_counter() - started > limit:
                    raise RuntimeError(f"worker not ready in {limit:.0f} s:\n{self.log(process)}")
                await asyncio.sleep(0.1)
        return time.perf_counter() - started

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    def stop_workers(self) -> None:
        for process in self.workers:
            self.kill(process)
        self.workers.clear()

    def close(self) -> None:
        try:
            self.stop_workers()
        finally:
            self.drop_database()


# -- the two backends -----------------------------------------------------------------------
def local_pool(settings: Settings) -> SeparationPool:
    """The pool a worker with these settings runs (see ``bot.cli.worker``), in process."""
    return build_pool(settings, worker_pool_config(settings))


@contextlib.asynccontextmanager
async def started_pool(settings: Settings):  # type: ignore[no-untyped-def]
    pool = local_pool(settings)
    await pool.start()
    try:
        yield pool
    finally:
        await pool.shutdown(timeout=0)


@contextlib.asynccontextmanager
async def started_frontend(settings: Settings):  # type: ignore[no-untyped-def]
    front = distributed_backend(settings)
    await front.start()
    try:
        yield front
    finally:
        await front.shutdown(timeout=0)


@dataclass
class Timeline:
    """perf_counter() instants of one job, as its caller sees them."""

    submitted: float
    submit_returned: float = 0.0
    first_running: float | None = None
    first_progress: float | None = None
    delivered: float | None = None
    wall_submitted: float = 0.0
    """time.time() at submit, to compare with PostgreSQL's timestamps (same host)."""


async def follow(handle: JobHandle, timeline: Timeline) -> None:
    async for event in handle.events():
        if isinstance(event, Running):
            now = time.perf_counter()
            if timeline.first_running is None:
                timeline.first_running = now
            if event.fraction > 0 and timeline.first_progress is None:
                timeline.first_progress = now


async def submit(
    backend: SeparationPool | DistributedBackend, request: SeparationRequest
) -> tuple[JobHandle, Timeline, asyncio.Task[None]]:
    timeline = Timeline(submitted=time.perf_counter(), wall_submitted=time.time())
    handle = await backend.submit(request)
    timeline.submit_returned = time.perf_counter()
    return handle, timeline, asyncio.create_task(follow(handle, timeline))


async def deliver(handle: JobHandle, timeline: Timeline, follower: asyncio.Task[None]) -> JobResult:
    """The result, its files checked to be there; the instant it was delivered."""
    result = await handle.result()
    timeline.delivered = time.perf_counter()
    await follower
    assert list(result.outputs) == ["instrumental", "vocals"], result.outputs
    assert all(path.stat().st_size > 0 for path in result.outputs.values())
    return result


def request(settings: Settings, path: Path, user: str) -> SeparationRequest:
    return SeparationRequest(user_ref=user, input_path=path, encoding=encoding_spec(settings))


# -- 1. throughput --------------------------------------------------------------------------
async def throughput(args: argparse.Namespace, bench: Bench, repo: Path, model: str) -> None:
    songs = [
        cut(bench.ffmpeg, 25.0 * index, args.seconds, bench.scratch / f"song-{index}.mp3")
        for index in range(args.songs)
    ]
    common = {"model": model, "repo": repo, "concurrency": args.concurrency,
              "batch_size": args.batch_size}  # fmt: skip
    local_settings = load_settings(bench.config("t-local", queue="tlocal", **common))
    configure_torch(local_settings)
    config = local_pool(local_settings).config
    print(
        f"\n== 1. throughput: {args.songs} songs of {args.seconds:.0f} s submitted together ==\n"
        f"model {model} ({args.architecture} architecture), batch size {config.batch_size}, "
        f"max running jobs = worker_concurrency = {config.max_running_jobs}, "
        f"output {encoding_spec(local_settings).format}, cpu threads {torch.get_num_threads()}\n"
        "each side: its own data folder and result cache (the distributed one: a fresh "
        "queue and blob folder too), so no cache hits"
    )

    async with started_pool(local_settings) as pool:
        started = time.perf_counter()
        jobs = [await submit(pool, request(local_settings, song, f"telegram:{index}"))
                for index, song in enumerate(songs)]  # fmt: skip
        results = [await deliver(*job) for job in jobs]
        local_wall = time.perf_counter() - started
        for result in results:
            result.release()
    print(f"local backend (pool in process):          {local_wall:7.1f} s")

    queue = f"t{uuid.uuid4().hex[:10]}"
    worker = bench.start_worker(bench.config("t-worker", queue=queue, **common))
    ready = await bench.wait_until_ready(worker, limit=args.worker_start_timeout)
    front_settings = load_settings(bench.config("t-front", queue=queue, **common))
    async with started_frontend(front_settings) as front:
        started = time.perf_counter()
        jobs = [await submit(front, request(front_settings, song, f"telegram:{index}"))
                for index, song in enumerate(songs)]  # fmt: skip
        submitted = time.perf_counter() - started
        results = [await deliver(*job) for job in jobs]
        distributed_wall = time.perf_counter() - started
        for result in results:
            result.release()
    bench.stop_workers()
    print(
        f"distributed backend, one worker process:  {distributed_wall:7.1f} s  "
        f"(submitting all: {submitted * 1000:.0f} ms; worker start-up, not counted: {ready:.1f} s)"
    )
    ratio = distributed_wall / local_wall
    verdict = "met" if ratio <= 1.10 else "NOT met"
    print(f"ratio distributed / local:                {ratio:7.3f}  (target <= 1.10: {verdict})")


# -- 2. per-job overhead --------------------------------------------------------------------
async def listen_for_outcomes(
    bench: Bench, queue: str, seen: dict[str, float], listening: asyncio.Event
) -> None:
    """The instant each outcome NOTIFY arrives (the same message the front-end gets)."""
    conninfo = psycopg_conninfo(bench.database_url)
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as connection:
        await connection.execute(f'LISTEN "{progress_channel(queue)}"')  # type: ignore[arg-type]
        listening.set()
        async for notice in connection.notifies():
            note = read_progress_message(notice.payload)
            if note is not None and note.outcome:
                seen.setdefault(note.job_id, time.perf_counter())


async def overhead(args: argparse.Namespace, bench: Bench, repo: Path) -> None:
    songs = [
        cut(bench.ffmpeg, 7.0 * index, args.overhead_seconds, bench.scratch / f"short-{index}.mp3")
        for index in range(args.overhead_songs)
    ]
    common = {"model": "tiny", "repo": repo, "concurrency": args.concurrency,
              "batch_size": args.batch_size}  # fmt: skip
    print(
        f"\n== 2. per-job overhead: {args.overhead_songs} songs of "
        f"{args.overhead_seconds:.0f} s, one after another, tiny model =="
    )

    local_settings = load_settings(bench.config("o-local", queue="olocal", **common))
    configure_torch(local_settings)
    local: list[Timeline] = []
    async with started_pool(local_settings) as pool:
        for song in songs:
            job = await submit(pool, request(local_settings, song, "telegram:1"))
            (await deliver(*job)).release()
            local.append(job[1])

    queue = f"o{uuid.uuid4().hex[:10]}"
    worker = bench.start_worker(bench.config("o-worker", queue=queue, **common))
    await bench.wait_until_ready(worker, limit=args.worker_start_timeout)
    outcomes: dict[str, float] = {}
    listening = asyncio.Event()
    listener = asyncio.create_task(listen_for_outcomes(bench, queue, outcomes, listening))
    await listening.wait()
    remote: list[tuple[Timeline, float, float, float]] = []
    front_settings = load_settings(bench.config("o-front", queue=queue, **common))
    try:
        async with started_frontend(front_settings) as front:
            for song in songs:
                handle, timeline, follower = await submit(
                    front, request(front_settings, song, "telegram:1")
                )
                result = await deliver(handle, timeline, follower)
                rows = await bench.query(
                    "SELECT extract(epoch FROM started_at), extract(epoch FROM finished_at) "
                    "FROM separation_runs WHERE job_id = %s",
                    handle.job_id,
                )
                started_at, finished_at = (float(value) for value in rows[0])
                result.release()
                notice = outcomes.get(handle.job_id, float("nan"))
                remote.append((timeline, started_at, finished_at, notice))
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        bench.stop_workers()

    def column(values: Callable[[Timeline], float], timelines: list[Timeline]) -> str:
        return summary([values(t) for t in timelines])

    first_running: Callable[[Timeline], float] = lambda t: (t.first_running or 0) - t.submitted  # noqa: E731
    submit_call: Callable[[Timeline], float] = lambda t: t.submit_returned - t.submitted  # noqa: E731
    whole: Callable[[Timeline], float] = lambda t: (t.delivered or 0) - t.submitted  # noqa: E731
    timelines = [item[0] for item in remote]
    print("local backend:")
    print(f"  submit() call                          {column(submit_call, local)}")
    print(f"  submit -> first Running                {column(first_running, local)}")
    print(f"  submit -> result                       {column(whole, local)}")
    print("distributed backend, one worker process:")
    print(f"  submit() call (upload, hash, admit)    {column(submit_call, timelines)}")
    pickup = [started - t.wall_submitted for t, started, _, _ in remote]
    print(f"  submit -> worker starts the attempt    {summary(pickup)}  (PostgreSQL's clock)")
    print(f"  submit -> first Running                {column(first_running, timelines)}")
    recorded = [(t.delivered or 0) - t.submitted - (finished - t.wall_submitted)
                for t, _, finished, _ in remote]  # fmt: skip
    print(f"  outcome recorded -> result delivered   {summary(recorded)}  (PostgreSQL's clock)")
    noticed = [(t.delivered or 0) - notice for t, _, _, notice in remote]
    print(f"  outcome NOTIFY -> result delivered     {summary(noticed)}  (download + check)")
    print(f"  submit -> result delivered             {column(whole, timelines)}")
    extra = statistics.median(whole(t) for t in timelines) - statistics.median(
        whole(t) for t in local
    )
    print(f"median extra time per song, distributed minus local: {ms(extra).strip()}")


# -- 3. failover ----------------------------------------------------------------------------
async def failover(args: argparse.Namespace, bench: Bench, repo: Path) -> None:
    defaults = QueueSettings()
    print(
        f"\n== 3. failover: SIGKILL the worker running a {args.failover_seconds:.0f} s song "
        "(tiny model, two workers) ==\n"
        f"queue settings (QueueSettings defaults): heartbeat_seconds "
        f"{defaults.heartbeat_seconds:g}, stalled_after_seconds "
        f"{defaults.stalled_after_seconds:g}, sweep_interval_seconds "
        f"{defaults.sweep_interval_seconds:g}, max_attempts {defaults.max_attempts}"
    )
    song = cut(bench.ffmpeg, 40.0, args.failover_seconds, bench.scratch / "long.mp3")
    queue = f"f{uuid.uuid4().hex[:10]}"
    common = {"queue": queue, "model": "tiny", "repo": repo, "concurrency": args.concurrency,
              "batch_size": args.batch_size}  # fmt: skip
    workers = [bench.start_worker(bench.config(f"f-worker{i}", **common)) for i in range(2)]
    await bench.wait_until_ready(*workers, limit=args.worker_start_timeout)
    settings = load_settings(bench.config("f-front", **common))
    try:
        async with started_frontend(settings) as front:
            handle, timeline, follower = await submit(front, request(settings, song, "telegram:1"))
            while timeline.first_progress is None:
                if handle.done:
                    raise RuntimeError("the song finished before it could be interrupted")
                await asyncio.sleep(0.005)
            rows = await bench.query(
                "SELECT r.worker, r.queue_job_id, extract(epoch FROM now() - w.last_heartbeat) "
                "FROM separation_runs r JOIN procrastinate_jobs j ON j.id = r.queue_job_id "
                "LEFT JOIN procrastinate_workers w ON w.id = j.worker_id WHERE r.job_id = %s",
                handle.job_id,
            )
            worker_name, _, heartbeat_age = rows[0]
            pid = int(str(worker_name).split("-")[-2])
            victim = next(process for process in workers if process.pid == pid)
            survivor = next(process for process in workers if process is not victim)
            progress = handle.state.fraction if isinstance(handle.state, Running) else float("nan")
            killed = time.perf_counter()
            bench.kill(victim)
            requeued = attempt_two = None
            while attempt_two is None:
                if handle.done:
                    break
                rows = await bench.query(
                    "SELECT r.attempt, j.status FROM separation_runs r LEFT JOIN "
                    "procrastinate_jobs j ON j.id = r.queue_job_id WHERE r.job_id = %s",
                    handle.job_id,
                )
                now = time.perf_counter()
                attempt, status = rows[0]
                if requeued is None and (status == "todo" or attempt >= 2):
                    requeued = now
                if attempt >= 2:
                    attempt_two = now
                await asyncio.sleep(0.02)
            result = await deliver(handle, timeline, follower)
            result.release()
    finally:
        bench.stop_workers()
    assert attempt_two is not None and requeued is not None, "no second attempt was seen"
    assert f"job {handle.job_id}: attempt 2 on" in bench.log(survivor)
    print(
        f"killed worker pid {pid} at {progress:.0%} of the song "
        f"({killed - timeline.submitted:.2f} s after submit); "
        f"its last heartbeat was {float(heartbeat_age):.2f} s old"
    )
    age = float(heartbeat_age)
    low = defaults.stalled_after_seconds - age
    print(
        f"SIGKILL -> song back in the queue (sweep)  {requeued - killed:7.2f} s  (expected "
        f"{low:.1f}-{low + defaults.sweep_interval_seconds:.1f} s: stalled_after_seconds minus "
        "the heartbeat's age, plus up to one sweep interval)"
    )
    print(
        f"back in the queue -> attempt 2 starts      {attempt_two - requeued:7.2f} s  (the sweep "
        "wakes idle workers at once; otherwise they would find it at their next poll)"
    )
    print(f"SIGKILL -> attempt 2 starts elsewhere      {attempt_two - killed:7.2f} s")
    print(f"SIGKILL -> result delivered                {(timeline.delivered or 0) - killed:7.2f} s")
    whole = (timeline.delivered or 0) - timeline.submitted
    print(f"submit -> result delivered (whole song)    {whole:7.2f} s")


# -- main -----------------------------------------------------------------------------------
def make_models(repo: Path, architecture: str) -> tuple[str, int]:
    """The throughput model (``bench``) and the ``tiny`` one; the first's parameter count."""
    kwargs = HTDEMUCS_KWARGS if architecture == "htdemucs" else TINY_HTDEMUCS_KWARGS
    network = build_htdemucs(kwargs)
    parameters = sum(p.numel() for p in network.parameters())
    save_repo_model(repo, "bench", [network])
    save_repo_model(repo, "tiny", [build_htdemucs(TINY_HTDEMUCS_KWARGS)])
    return "bench", parameters


async def run(args: argparse.Namespace, bench: Bench, repo: Path, model: str) -> None:
    if not args.skip_throughput:
        await throughput(args, bench, repo, model)
    if not args.skip_overhead:
        await overhead(args, bench, repo)
    if not args.skip_failover:
        await failover(args, bench, repo)


def interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up like Ctrl-C


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--architecture", choices=["htdemucs", "tiny"], default="htdemucs",
                        help="model of part 1 (parts 2 and 3 use tiny)")  # fmt: skip
    parser.add_argument("--songs", type=int, default=4, help="songs of part 1")
    parser.add_argument("--seconds", type=float, default=30.0, help="song length of part 1")
    parser.add_argument("--concurrency", type=int, default=4,
                        help="queue.worker_concurrency = local max running jobs")  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=0,
                        help="pool.batch_size (0: the pool's default, 1 on CPU)")  # fmt: skip
    parser.add_argument("--threads", type=int, default=0,
                        help="model.cpu_threads of every side (0: torch's default)")  # fmt: skip
    parser.add_argument("--format", choices=["mp3", "opus", "flac", "wav"], default=None,
                        help="output.format (default: the settings' default, mp3)")  # fmt: skip
    parser.add_argument("--overhead-songs", type=int, default=10)
    parser.add_argument("--overhead-seconds", type=float, default=3.0)
    parser.add_argument("--failover-seconds", type=float, default=75.0)
    parser.add_argument("--worker-start-timeout", type=float, default=300.0)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES,
                        help="PostgreSQL to create the benchmark's database on")  # fmt: skip
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--skip-failover", action="store_true")
    args = parser.parse_args()
    if not MUSIC.exists():
        parser.error(f"real music not found at {MUSIC}")

    signal.signal(signal.SIGTERM, interrupt)
    ffmpeg = find_ffmpeg()
    with tempfile.TemporaryDirectory(prefix="distributed-bench-") as folder:
        scratch = Path(folder)
        bench = Bench(scratch, args.postgres_url, ffmpeg, args.threads, args.format)
        try:
            model, parameters = make_models(scratch / "models", args.architecture)
            bench.create_database()
            print(
                f"database {make_url(bench.database_url).database} (dropped at the end); "
                f"{os.cpu_count()} CPU cores; part 1 model: random {args.architecture} "
                f"architecture, {parameters / 1e6:.2f} M parameters"
            )
            asyncio.run(run(args, bench, scratch / "models", model))
        finally:
            bench.close()


if __name__ == "__main__":
    main()
