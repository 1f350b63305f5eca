"""A small distributed fleet on one machine for tests: config files, ``karaoke-bot worker``
processes started as an operator starts them, front-ends, and what to read back (the
run ledger, WAV samples, a job's events).

Each test gets its own queue name (the session's fresh database is shared), its own blob
folder and its own worker processes, killed at the end. Front-ends run in the test's
event loop as ``DistributedBackend`` objects built from the same kind of config file.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psycopg
import pytest

from bot.chat.conversation.flow import ChatFlow
from bot.chat.conversation.types import ChatUser, Conversation
from bot.distributed.frontend import DistributedBackend
from bot.distributed.postgres import psycopg_conninfo
from bot.distributed.setup import distributed_backend
from bot.settings import Settings, load_settings
from separation.audio.encode import EncodingSpec
from separation.jobs import JobHandle, JobResult, SeparationRequest
from storage.store import Store
from tests.support.s3 import S3Server

ROOT = Path(__file__).resolve().parents[2]
WORKER_READY = "taking songs from queue"
START_TIMEOUT_SECONDS = 90.0


@dataclass
class Fleet:
    """One test's queue: its config files, workers and front-ends."""

    root: Path
    database_url: str
    model_repo: Path
    queue: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}")
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    frontends: list[DistributedBackend] = field(default_factory=list)
    extra: str = ""
    max_attempts: int = 3
    queue_options: dict[str, float | int] = field(default_factory=dict)
    """``[queue]`` settings that replace the fleet's (e.g. a longer stalled timeout)."""
    s3: S3Server | None = None
    """Set: blobs go to this S3 server (credentials through the environment)."""
    blobs_extra: str = ""
    """More lines of every config's ``[blobs]`` section (e.g. its byte limit)."""

    @property
    def blobs(self) -> Path:
        return self.root / "blobs"

    def config(self, name: str, extra: str = "", database_url: str | None = None) -> Path:
        """A config file for one process (its own data folder, the fleet's queue);
        ``database_url``, if given, replaces the fleet's (a worker reaching PostgreSQL
        another way)."""
        path = self.root / f"{name}.toml"
        path.write_text(
            f"""
[general]
data_dir = "{self.root / name}"
[model]
name = "tiny"
repo = "{self.model_repo}"
cpu_threads = 1
[database]
url = "{database_url or self.database_url}"
[backend]
kind = "distributed"
{self._blobs_section()}
[queue]
name = "{self.queue}"
{self._queue_options()}
[output]
format = "wav"
{self.extra}
{extra}
"""
        )
        return path

    def _queue_options(self) -> str:
        options: dict[str, float | int] = {
            "heartbeat_seconds": 0.5,
            "stalled_after_seconds": 2.0,
            "sweep_interval_seconds": 0.25,
            "worker_concurrency": 2,
            "max_attempts": self.max_attempts,
        }
        return "\n".join(f"{k} = {v}" for k, v in (options | self.queue_options).items())

    def _blobs_section(self) -> str:
        if self.s3 is None:
            return f'[blobs]\nkind = "local"\npath = "{self.blobs}"\n{self.blobs_extra}'
        return (
            f'[blobs]\nkind = "s3"\nendpoint_url = "{self.s3.endpoint_url}"\n'
            f'bucket = "{self.s3.bucket}"\nregion = "{self.s3.region}"\npart_size_mb = 5\n'
            f"{self.blobs_extra}"
        )

    @property
    def environ(self) -> dict[str, str]:
        """Secrets as an operator passes them: in the environment, not the file."""
        if self.s3 is None:
            return {}
        return {
            "KARAOKE_S3_ACCESS_KEY_ID": self.s3.access_key_id,
            "KARAOKE_S3_SECRET_ACCESS_KEY": self.s3.secret_access_key,
        }

    def settings(self, name: str, extra: str = "") -> Settings:
        return load_settings(self.config(name, extra), self.environ)

    def start_worker(
        self,
        extra: str = "",
        *,
        wrap: Sequence[str] = (),
        database_url: str | None = None,
        name: str | None = None,
    ) -> subprocess.Popen[bytes]:
        """A ``karaoke-bot worker`` process; ``wrap`` prefixes its command line (e.g.
        ``ip netns exec NAME``, which execs in place: the pid stays the worker's);
        ``name`` reuses an earlier worker's config and data folder (a restart)."""
        name = name or f"worker{len(self.workers)}"
        log = self.root / f"{name}-{len(self.workers)}.log"
        environment = {k: v for k, v in os.environ.items() if not k.startswith("KARAOKE_")}
        environment["PYTHONPATH"] = str(ROOT)
        environment |= self.environ
        config = self.config(name, extra, database_url)
        process = subprocess.Popen(
            [*wrap, sys.executable, "-m", "bot.cli.main", "worker", "-v", "--config", str(config)],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            env=environment,
            cwd=self.root,
        )
        self.workers.append(process)
        self.logs.append(log)
        return process

    def wait_until_ready(self, *processes: subprocess.Popen[bytes]) -> None:
        """Until each worker has loaded its model and taken up the queue."""
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        for process in processes:
            log = self.logs[self.workers.index(process)]
            while WORKER_READY not in log.read_text(errors="replace"):
                if process.poll() is not None:
                    pytest.fail(f"worker exited ({process.returncode}):\n{log.read_text()[-3000:]}")
                if time.monotonic() > deadline:
                    pytest.fail(f"worker not ready in time:\n{log.read_text()[-3000:]}")
                time.sleep(0.1)

    def worker_log(self, process: subprocess.Popen[bytes]) -> str:
        return self.logs[self.workers.index(process)].read_text(errors="replace")

    async def frontend(self, name: str = "front", extra: str = "") -> DistributedBackend:
        backend = distributed_backend(self.settings(name, extra))
        await backend.start()
        self.frontends.append(backend)
        return backend

    def blob_files(self, prefix: str) -> list[Path]:
        folder = self.blobs / prefix
        return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []

    async def query(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        conninfo = psycopg_conninfo(self.database_url)
        async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as connection:
            cursor = await connection.execute(sql, params)  # type: ignore[arg-type]
            return list(await cursor.fetchall())

    def stop(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``process`` and reap it: a crash, not a shutdown."""
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


async def wait_for(condition: Callable[[], bool], seconds: float = 60.0) -> None:
    """Until ``condition()`` holds, polling the event loop; fails after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


WAV = EncodingSpec(format="wav")


def request(path: Path, user: str = "telegram:1", job_id: str | None = None) -> SeparationRequest:
    """A request for ``path`` with WAV output (what the fleet's tests compare sample by sample)."""
    return SeparationRequest(user_ref=user, input_path=path, encoding=WAV, job_id=job_id)


def samples(path: Path) -> np.ndarray:
    """A 32-bit float WAV's samples (the stdlib's ``wave`` reads only integer PCM)."""
    data = path.read_bytes()
    start = data.index(b"data") + 8
    size = int.from_bytes(data[start - 4 : start], "little")
    return np.frombuffer(data[start : start + size], dtype="<f4")


async def read(handle: JobHandle) -> tuple[list[object], JobResult]:
    """All of a job's events, then its result."""
    events = [event async for event in handle.events()]
    return events, await handle.result()


async def ledger(fleet: Fleet, job_id: str) -> tuple[int, str | None]:
    """The run ledger's one row for ``job_id``: (attempt, outcome)."""
    rows = await fleet.query(
        "SELECT attempt, outcome FROM separation_runs WHERE job_id = %s", job_id
    )
    assert len(rows) == 1, rows
    return int(rows[0][0]), rows[0][1]  # type: ignore[call-overload, return-value]


def new_user() -> tuple[ChatUser, Conversation]:
    """A user of its own (the session's database is shared between tests)."""
    user_id = str(uuid.uuid4().int % 10**12)
    return ChatUser("telegram", user_id, "Bea"), Conversation("telegram", user_id, message_id="5")


@dataclass
class FrontEnd:
    """One front-end host: its chat flow, distributed backend and store."""

    flow: ChatFlow
    backend: DistributedBackend
    store: Store
