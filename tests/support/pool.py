"""The worker pool in tests: building one, runners that stand in for
``engine.run_batch``, requests, waits on its events, its CPU-budget log, readers.

One builder (:func:`make_pool`) serves the pool tests and the bot harnesses alike.
Runners are the one boundary the pool lets tests inject: they slow batches down, count
them, or raise the errors a GPU would (out of memory) on chosen batches. The model
itself, decoding, rendering and the cache all run for real.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from separation.audio.encode import EncodingSpec
from separation.cpu_budget import CpuBudget, SlotEvent
from separation.jobs import JobHandle, ProgressEvent, SeparationRequest
from separation.model.batching import BatchRunner
from separation.model.engine import Segment, run_batch
from separation.model.loading import LoadedModel, load_model
from separation.pool import PoolConfig, SeparationPool

WAV = EncodingSpec(format="wav")

PoolFactory = Callable[..., Awaitable[SeparationPool]]
"""The pool tests' ``make_pool`` fixture: ``await make_pool(runner=..., **fields)``."""

LoadedModels = dict[tuple[str, str], LoadedModel]
"""Models already loaded, by (name, device), as a ``ModelCache`` would keep them."""


def make_pool(
    *,
    ffmpeg: str,
    tmp_root: Path,
    cache_dir: Path,
    model: str,
    repo: Path | None,
    loaded: LoadedModels | None = None,
    runner: BatchRunner | None = None,
    **config: Any,
) -> SeparationPool:
    """A pool (not started) running ``model`` from ``repo``; ``config``: other
    ``PoolConfig`` fields (no warm-up unless ``warm_up=True``). With ``loaded``, each
    model is loaded once and shared between pools."""
    config.setdefault("warm_up", False)
    pool_config = PoolConfig(ffmpeg=ffmpeg, tmp_root=tmp_root, cache_dir=cache_dir, **config)

    def loader(device: torch.device) -> LoadedModel:
        if loaded is None:
            return load_model(model, repo=repo, device=device)
        key = (model, str(device))
        if key not in loaded:
            loaded[key] = load_model(model, repo=repo, device=device)
        return loaded[key]

    return SeparationPool(pool_config, loader, runner=runner or run_batch)


def du_bytes(folder: Path) -> int:
    """What ``folder`` takes on disk, as ``du`` measures it: a check of the cache's limit
    independent of the cache's own measurement."""
    out = subprocess.run(["du", "-s", "--block-size=1", str(folder)], capture_output=True)
    return int(out.stdout.split()[0])


def read_audio(path: Path, ffmpeg: str) -> np.ndarray:
    """A rendered file back as float32 ``(channels, n)``."""
    raw = subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-i", str(path), "-f", "f32le", "-"],
        check=True,
        capture_output=True,
    ).stdout
    return np.frombuffer(raw, dtype="<f4").reshape(-1, 2).T


class CountingRunner:
    """``run_batch`` that records batch sizes, optionally slowed down."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.batches: list[int] = []
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    @property
    def segments(self) -> int:
        return sum(self.batches)

    def __call__(self, model: LoadedModel, segments: Sequence[Segment]) -> list[torch.Tensor]:
        with self._lock:
            self.batches.append(len(segments))
            self.threads.add(threading.current_thread().name.split("_")[0])
        if self.delay:
            time.sleep(self.delay)
        return run_batch(model, segments)


class FailingRunner(CountingRunner):
    """Raises ``make_error()`` for batches that ``fails(segments)`` selects."""

    def __init__(
        self,
        fails: Callable[[Sequence[Segment]], bool],
        make_error: Callable[[], Exception],
        delay: float = 0.0,
    ) -> None:
        super().__init__(delay)
        self.fails = fails
        self.make_error = make_error
        self.failures = 0

    def __call__(self, model: LoadedModel, segments: Sequence[Segment]) -> list[torch.Tensor]:
        if self.fails(segments):
            self.failures += 1
            raise self.make_error()
        return super().__call__(model, segments)


def frames_of(seconds: float) -> int:
    """How many frames ``seconds`` of 44.1 kHz audio has."""
    return int(seconds * 44100)


def out_of_memory() -> Exception:
    """The error PyTorch raises when the GPU runs out of memory."""
    return torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def request(path: Path, user: str = "telegram:1", **fields: object) -> SeparationRequest:
    """A request for ``path`` (WAV output unless ``encoding`` is given)."""
    fields.setdefault("encoding", WAV)
    return SeparationRequest(user_ref=user, input_path=path, **fields)  # type: ignore[arg-type]


async def first_event(handle: JobHandle, limit: float = 10.0) -> ProgressEvent:
    """Wait until the pool said something about ``handle`` (it hashed and queued it)."""
    async with asyncio.timeout(limit):
        async for event in handle.events():
            return event
    raise AssertionError("no event")


async def wait_for(
    handle: JobHandle, predicate: Callable[[ProgressEvent], bool], limit: float = 20.0
) -> ProgressEvent:
    """The first event of ``handle`` that ``predicate`` accepts; fails if the stream ends."""
    async with asyncio.timeout(limit):
        async for event in handle.events():
            if predicate(event):
                return event
    raise AssertionError(f"stream ended at {handle.state}")


def job_folders(tmp_root: Path) -> list[Path]:
    """The pool's per-job temporary folders left under ``tmp_root``."""
    return list(tmp_root.glob("job-*")) if tmp_root.exists() else []


class SlotLog:
    """A pool's CPU-budget events as ``"kind LANE"`` strings, in the order they happened."""

    def __init__(self, budget: CpuBudget) -> None:
        self.events: list[str] = []
        self.times: list[float] = []
        """``time.monotonic()`` of each event in :attr:`events`."""
        self.changed = asyncio.Event()
        budget.add_listener(self._record)

    def _record(self, event: SlotEvent) -> None:
        self.events.append(f"{event.kind} {event.lane.name}")
        self.times.append(time.monotonic())
        self.changed.set()

    def songs_waited_seconds(self, since: int = 0) -> float:
        """How long songs' work waited for a slot in all, from event ``since`` on: each
        ``wait FIRST_RESULT`` until the next ``grant FIRST_RESULT`` (served in order). The
        time renders held songs up, whatever else slows the machine down."""
        waits: list[float] = []
        held = 0.0
        for event, at in zip(self.events[since:], self.times[since:], strict=True):
            if event == "wait FIRST_RESULT":
                waits.append(at)
            elif event == "grant FIRST_RESULT" and waits:
                held += at - waits.pop(0)
        return held

    async def wait_for(self, event: str, limit: float = 60.0) -> None:
        """Until ``event`` (e.g. ``"grant AFTER_THE_FACT"``) happened."""
        async with asyncio.timeout(limit):
            while event not in self.events:
                self.changed.clear()
                await self.changed.wait()

    def songs_served_first(self) -> bool:
        """Whether every time a song's work waited for a slot, a song got the next one
        (no render started or went on while a song waited)."""
        waiting = 0
        for event in self.events:
            kind, lane = event.split()
            if kind == "wait" and lane == "FIRST_RESULT":
                waiting += 1
            elif kind == "grant" and lane == "FIRST_RESULT" and waiting:
                waiting -= 1
            elif kind == "grant" and lane == "AFTER_THE_FACT" and waiting:
                return False
        return True
