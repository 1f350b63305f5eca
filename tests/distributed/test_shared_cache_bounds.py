"""The blob store's shared result cache bounded by bytes (issue 21): renders go before
songs, a render's own song stays, a result never finished is swept; and under a storm
of presses through real workers the store stays within its limit."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path

import pytest

from bot.distributed.blobs import LocalBlobStore
from bot.distributed.retention import SharedCacheLimits, sweep_shared_cache
from bot.distributed.wire import MANIFEST_NAME, OutputFile, ResultManifest, result_prefix
from separation.audio.render_options import RenderOptions
from separation.jobs import RenderRequest
from tests.support.fleet import WAV, Fleet, read, request

SONG, OLD_SONG, RENDER, OLD_RENDER = "a" * 64, "b" * 64, "c" * 64, "d" * 64
"""Four results of ~1.4 kB each (1000 bytes of audio and a manifest)."""
NOW = time.time()


async def _store(
    blobs: LocalBlobStore, key: str, size: int, created_at: float, render_of: str | None = None
) -> None:
    prefix = result_prefix(key)
    await blobs.put_bytes(prefix + "instrumental.wav", b"x" * size)
    manifest = ResultManifest(
        key,
        [OutputFile("instrumental", prefix + "instrumental.wav", size, "-")],
        1.0,
        None,
        created_at=created_at,
        render_of=render_of,
    )
    await blobs.put_bytes(prefix + MANIFEST_NAME, manifest.to_json())


def _results(blobs: LocalBlobStore) -> set[str]:
    return {path.name for path in (blobs.root / "results").iterdir()}


async def test_over_the_byte_limit_renders_go_first_and_a_render_keeps_its_song(tmp_path: Path):
    blobs = LocalBlobStore(tmp_path / "blobs")
    await _store(blobs, OLD_SONG, 1000, NOW - 300)
    await _store(blobs, SONG, 1000, NOW - 200)
    await _store(blobs, OLD_RENDER, 1000, NOW - 100, render_of=OLD_SONG)
    await _store(blobs, RENDER, 1000, NOW, render_of=SONG)
    limits = SharedCacheLimits(3000, 3600, incomplete_after_seconds=60)
    report = await sweep_shared_cache(blobs, limits, now=NOW, keep=[RENDER])
    # The older render goes first, then the oldest song; the new render's song stays.
    assert _results(blobs) == {SONG, RENDER}
    assert report.evicted == 2 and report.used_bytes <= 3000


async def test_a_result_whose_manifest_was_never_written_is_swept_once_old(tmp_path: Path):
    blobs = LocalBlobStore(tmp_path / "blobs")
    await _store(blobs, SONG, 10, NOW)
    for key in (OLD_SONG, RENDER):  # a worker killed mid-upload; one still uploading
        await blobs.put_bytes(result_prefix(key) + "instrumental.wav", b"half")
    old = blobs.root / "results" / OLD_SONG / "instrumental.wav"
    os.utime(old, (NOW - 120, NOW - 120))
    limits = SharedCacheLimits(0, 3600, incomplete_after_seconds=60)
    report = await sweep_shared_cache(blobs, limits, now=NOW)
    assert _results(blobs) == {SONG, RENDER} and report.incomplete == 1


@pytest.mark.slow
async def test_a_render_storm_keeps_the_blob_store_within_its_byte_limit(fleet: Fleet, song):
    # A result a killed worker left without its manifest, found at the next start.
    orphan = fleet.blobs / "results" / OLD_SONG / "instrumental.wav"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"half a song")
    os.utime(orphan, (NOW - 3600, NOW - 3600))
    limit = 12_000_000
    fleet.blobs_extra = f"cache_max_bytes = {limit}\nincomplete_after_minutes = 1.0"
    worker = fleet.start_worker()
    fleet.wait_until_ready(worker)
    front = await fleet.frontend()
    _, plain = await read(await front.submit(request(song(5, "storm"))))
    plain.release()
    assert not orphan.parent.exists()

    def used() -> int:
        """The bytes under results/, as the store lists them (temporaries come and go)."""
        total = 0
        for path in fleet.blob_files("results"):
            with contextlib.suppress(FileNotFoundError):
                total += path.stat().st_size
        return total

    peak = used()
    sampling = True

    async def sample() -> None:
        nonlocal peak
        while sampling:
            peak = max(peak, used())
            await asyncio.sleep(0.01)

    sampler = asyncio.create_task(sample())
    presses = [
        RenderRequest(plain.cache_key, RenderOptions(tempo=tempo), encoding=WAV)
        for tempo in (0.8, 0.85, 0.9, 1.1, 1.2, 1.3)
    ]
    renders = await asyncio.gather(*(front.render(press) for press in presses))
    sampling = False
    await sampler
    largest = max(
        sum(path.stat().st_size for path in render.outputs.values()) for render in renders
    )
    for render in renders:
        render.release()
    print(f"blob store: peak {peak} bytes, limit {limit}, largest render {largest}")
    # Two renders at a time on the worker (queue.worker_concurrency = 2) may each be one
    # entry over until their own sweep.
    assert peak <= limit + 2 * largest
    assert used() <= limit
    assert (fleet.blobs / result_prefix(plain.cache_key) / MANIFEST_NAME).exists()
    assert "evicted for space" in fleet.worker_log(worker)
