"""A short song sent while re-render storms run: its time to "Done!" alone and with them.

Issue 20: one user pressing the five control buttons under a 4-minute song held another
user's 20-second song for 90 s, because re-renders took the pool's single ffmpeg slot
first come first served. This runs the same scene through the worker pool: long songs
are separated once, then for each mode

- the short song alone,
- the short song sent while one user's ``--presses`` re-renders of a long song run,
- the short song sent while ``--users`` users' storms run,

and prints the short song's time to its result (what "Done!" waits for), its ratio to
the time alone, and what became of the renders. ``fifo`` is the behaviour before lanes
(renders in the songs' lane: first come first served, never paused); ``lanes`` is the
pool as it is (renders after songs, paused while a song waits, at most
``--max-queued-renders`` at once). Every short song and every render setting is new,
so nothing comes from the cache.

    python benchmarks/render_storm_benchmark.py
    python benchmarks/render_storm_benchmark.py --model tiny --long-seconds 120
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pool_benchmark import LIMITS, MODEL_KINDS, MUSIC, cut, random_model

from separation.audio.ffmpeg import find_ffmpeg
from separation.audio.render_options import RenderOptions
from separation.cpu_budget import CpuPlan, Lane, SlotEvent, available_cores
from separation.errors import RendersBusyError
from separation.jobs import RenderRequest, SeparationRequest
from separation.model.loading import LoadedModel
from separation.pool import PoolConfig, SeparationPool


@dataclass
class Storm:
    """What became of one scene's renders."""

    rendered: int = 0
    refused: int = 0
    pauses: int = 0
    seconds: float = 0.0
    longest_slot_wait: float = 0.0
    """The longest wait for an ffmpeg slot in the songs' lane: the short song's decode or
    encoders (and, in ``fifo`` mode, the renders, which share that lane there)."""


def fresh_settings() -> Iterator[RenderOptions]:
    """Render settings never asked for before in this run (nothing from the cache)."""
    keys = [key for key in range(-6, 7) if key]
    tempos = [round(0.5 + 0.05 * step, 2) for step in range(21)]
    for tempo, key in itertools.product(tempos, keys):
        yield RenderOptions(key=key, tempo=tempo)


class Scene:
    """One pool, its long songs separated once, and fresh short songs on demand."""

    def __init__(self, pool: SeparationPool, scratch: Path, ffmpeg: str, args: argparse.Namespace):
        self.pool = pool
        self.scratch = scratch
        self.ffmpeg = ffmpeg
        self.args = args
        self.long_keys: list[str] = []
        self.settings = fresh_settings()
        self._short_songs = itertools.count()
        self._pauses = 0
        self._granted = asyncio.Event()
        self._song_waits: list[float] = []
        """When each song's request for a slot began waiting, oldest first."""
        self._slot_waits: list[float] = []
        pool.cpu.add_listener(self._observe)

    def _observe(self, event: SlotEvent) -> None:
        if event.kind == "pause":
            self._pauses += 1
        elif event.kind == "grant":
            self._granted.set()
        if event.lane is Lane.FIRST_RESULT and event.kind == "wait":
            self._song_waits.append(time.perf_counter())
        elif event.lane is Lane.FIRST_RESULT and event.kind == "grant" and self._song_waits:
            self._slot_waits.append(time.perf_counter() - self._song_waits.pop(0))

    async def separate_long_songs(self) -> None:
        for user in range(self.args.users):
            song = cut(
                self.ffmpeg,
                MUSIC[0],
                user * 17.0,
                self.args.long_seconds,
                self.scratch / f"long-{user}.flac",
            )
            handle = await self.pool.submit(
                SeparationRequest(user_ref=f"storm-{user}", input_path=song)
            )
            result = await handle.result()
            result.release()
            self.long_keys.append(result.cache_key)

    async def short_song(self) -> float:
        """Seconds from submitting a new short song to its result."""
        index = next(self._short_songs)
        song = cut(
            self.ffmpeg,
            MUSIC[1],
            index * 11.0,
            self.args.short_seconds,
            self.scratch / f"short-{index}.flac",
        )
        started = time.perf_counter()
        handle = await self.pool.submit(SeparationRequest(user_ref="listener", input_path=song))
        result = await handle.result()
        seconds = time.perf_counter() - started
        result.release()
        return seconds

    async def with_storm(self, users: int, lane: Lane) -> tuple[float, Storm]:
        """The short song's seconds while ``users`` storms of presses run."""
        storm = Storm()
        pauses = self._pauses

        async def press(key: str, options: RenderOptions) -> None:
            try:
                result = await self.pool.render(RenderRequest(key, options, lane=lane))
            except RendersBusyError:
                storm.refused += 1
                return
            result.release()
            storm.rendered += 1

        started = time.perf_counter()
        self._granted.clear()
        self._slot_waits.clear()
        presses = [
            asyncio.create_task(press(self.long_keys[user], next(self.settings)))
            for user in range(users)
            for _ in range(self.args.presses)
        ]
        await self._granted.wait()  # the first render holds the slot, as in the report
        song = await self.short_song()
        await asyncio.gather(*presses)
        storm.seconds = time.perf_counter() - started
        storm.pauses = self._pauses - pauses
        storm.longest_slot_wait = max(self._slot_waits, default=0.0)
        return song, storm


async def run(config: PoolConfig, model: LoadedModel, scratch: Path, ffmpeg: str, args) -> None:
    pool = SeparationPool(config, lambda device: model)
    await pool.start()
    scene = Scene(pool, scratch, ffmpeg, args)
    await scene.separate_long_songs()
    await scene.short_song()  # warm: the first song of a process pays for imports
    modes = {"fifo": Lane.FIRST_RESULT, "lanes": Lane.AFTER_THE_FACT}
    for mode in args.modes:
        alone = await scene.short_song()
        print(f"{mode:5s}  short song alone:{'':27s} {alone:6.1f} s")
        for users in sorted({1, args.users}):
            song, storm = await scene.with_storm(users, modes[mode])
            print(
                f"{mode:5s}  with {users} x {args.presses} presses on {args.long_seconds:.0f} s "
                f"songs:{'':3s} {song:6.1f} s = {song / alone:4.2f}x alone; renders: "
                f"{storm.rendered} done, {storm.refused} refused busy, {storm.pauses} paused "
                f"for the song, all over after {storm.seconds:.1f} s; longest wait for a "
                f"slot in the songs' lane {storm.longest_slot_wait:.2f} s"
            )
    await pool.shutdown(timeout=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short-seconds", type=float, default=20.0)
    parser.add_argument("--long-seconds", type=float, default=60.0)
    parser.add_argument("--presses", type=int, default=5, help="per storming user")
    parser.add_argument("--users", type=int, default=3, help="storming users, second scene")
    parser.add_argument("--max-queued-renders", type=int, default=10)
    parser.add_argument("--model", choices=MODEL_KINDS, default="htdemucs")
    parser.add_argument("--cores", type=int, default=available_cores())
    parser.add_argument("--modes", nargs="+", choices=["fifo", "lanes"], default=["fifo", "lanes"])
    args = parser.parse_args()
    ffmpeg = find_ffmpeg()
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        model = random_model(args.model, scratch / "models")
        print(
            f"{args.model} (random weights, {model.precision}), {args.cores} cores: "
            f"{args.short_seconds:.0f} s short song, {args.long_seconds:.0f} s storm songs"
        )
        config = PoolConfig(
            ffmpeg=ffmpeg,
            tmp_root=scratch / "tmp",
            cache_dir=scratch / "cache",
            limits=LIMITS,
            max_queued_renders=args.max_queued_renders,
            cpu=CpuPlan.for_cores(args.cores, torch.get_num_threads()),
        )
        asyncio.run(run(config, model, scratch, ffmpeg, args))


if __name__ == "__main__":
    main()
