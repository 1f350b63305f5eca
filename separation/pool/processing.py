"""One flight processed: the song decoded, separated by the shared workers, rendered
into the result cache.

The chain itself is ``separation.pipeline.separate_song``; this module supplies the
pool's parts of it. The model step hands the song's segments to the batch scheduler,
so they share forward passes with other songs, and when a segment does not fit in the
device's memory it retries with shorter segments. Progress from the worker threads is
published to the flight's callers, throttled. The outputs are rendered into a cache
staging folder and committed as the flight's cache entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from separation.audio.decode import DecodedAudio, inspect_audio
from separation.audio.encode import EncodingSpec, choose_mp3_bitrate
from separation.cache.extras import LYRICS_TIMING, TAG_LYRICS, tag_lyrics_of
from separation.cache.results import CacheEntry, ResultCache
from separation.cpu_budget import CpuBudget, Lane
from separation.errors import OutOfMemoryError
from separation.jobs import Decoded, JobResult, RenderRequest, Running, SeparationRequest
from separation.model.batching import BatchScheduler, SegmentTooLargeError
from separation.model.engine import SeparationJob, SeparationOptions
from separation.model.loading import LoadedModel
from separation.model.offload import run_blocking
from separation.model.stems import SeparatedStems
from separation.pipeline import PipelineConfig, SeparationResult, Song, separate_song
from separation.pool.config import PoolConfig
from separation.pool.flights import Flight
from separation.pool.song_extras import ExtrasPlan, SongExtras, read_song_extras

logger = logging.getLogger(__name__)


class FlightProcessor:
    """Turns an admitted flight into a committed cache entry."""

    def __init__(
        self,
        config: PoolConfig,
        cache: ResultCache,
        cpu: CpuBudget,
        *,
        on_progress: Callable[[], None],
        on_stored: Callable[[], None],
    ) -> None:
        """``on_progress``: a running job advanced (queue estimates may change);
        ``on_stored``: a new entry is in the cache (it may need evicting)."""
        self._config = config
        self._cache = cache
        self._cpu = cpu
        self._on_progress = on_progress
        self._on_stored = on_stored
        self._pipeline = PipelineConfig(
            ffmpeg=config.ffmpeg,
            tmp_root=config.tmp_root,
            limits=config.limits,
            options=config.options,
            keep_stems=config.keep_stems,
        )
        self._extras = ExtrasPlan(
            tag_lyrics=config.read_tag_lyrics, cover=config.keep_cover and config.keep_stems
        )
        self._model: LoadedModel | None = None
        self._batches: BatchScheduler | None = None
        self._model_on_cpu = any(device.type == "cpu" for device in config.devices)

    def attach(self, model: LoadedModel, batches: BatchScheduler) -> None:
        """The model and the workers' batch scheduler, once the pool has started them."""
        self._model = model
        self._batches = batches

    @property
    def model(self) -> LoadedModel:
        if self._model is None:
            raise RuntimeError("SeparationPool.start() was not called")
        return self._model

    async def process(self, flight: Flight) -> JobResult:
        request = await self._with_header(flight.request)
        staged = [await run_blocking(None, self._cache.staging)]
        # The song's extras are read from the upload beside the model step, into the
        # entry's staging folder (the cover is kept with the stems).
        extras = asyncio.ensure_future(
            read_song_extras(
                request.input_path,
                staged[0],
                plan=self._extras_plan(request),
                ffmpeg=self._config.ffmpeg,
                cpu=self._cpu,
            )
        )

        def decoded(audio: DecodedAudio) -> EncodingSpec:
            flight.publish(Decoded(audio.duration_seconds))
            return fit_encoding(request, audio.duration_seconds)

        async def separate(audio: DecodedAudio, workdir: Path) -> SeparatedStems:
            return await self._separate(flight, audio, workdir)

        async def staging() -> Path:
            return staged[0]

        try:
            song = await separate_song(
                Song(
                    request.input_path,
                    stems=request.stems,
                    encoding=request.encoding,
                    fallback_title=fallback_title(request),
                    probe=request.probe,
                ),
                model=self.model,
                config=self._pipeline,
                separate=separate,
                output_folder=staging,
                on_decoded=decoded,
                cpu=self._cpu,
            )
            entry = await self._commit(flight, staged[0], song, await extras)
            staged.clear()
            return result_from_entry(entry, cache_hit=False)
        finally:
            if not extras.done():
                extras.cancel()
            await asyncio.gather(extras, return_exceptions=True)  # nothing writes any more
            for folder in staged:
                await run_blocking(None, self._cache.discard_staging, folder)

    async def _with_header(self, request: SeparationRequest) -> SeparationRequest:
        """The header, read once, for the decode and for the extras' plan alike: a song
        whose header shows no picture costs no cover run (the command line and tests
        submit without a header; the chats read it before)."""
        if request.probe is not None:
            return request
        async with self._cpu.audio(1):  # a child process, counted like the decode's
            header = await run_blocking(
                None,
                inspect_audio,
                request.input_path,
                ffmpeg=self._pipeline.ffmpeg,
                limits=self._pipeline.limits,
            )
        return dataclasses.replace(request, probe=header)

    def _extras_plan(self, request: SeparationRequest) -> ExtrasPlan:
        """What to read from this upload: no cover where its header says it has none
        (most songs), sparing an ffmpeg run on a stranger's file."""
        if request.probe is not None and request.probe.has_picture is False:
            return dataclasses.replace(self._extras, cover=False)
        return self._extras

    async def _commit(
        self, flight: Flight, staging: Path, song: SeparationResult, extras: SongExtras
    ) -> CacheEntry:
        """The song's outputs, stems and extras committed as the flight's entry."""
        metadata = outputs_metadata(
            song.duration_seconds,
            song.encoding,
            song.input_tags,
            song.gain,
            fallback_title=fallback_title(flight.request),
            stems_scale=song.stems.scale if song.stems else None,
            **{TAG_LYRICS: extras.tag_lyrics},
        )
        entry = await run_blocking(
            None,
            self._cache.commit,
            flight.key,
            staging,
            song.outputs,
            metadata,
            extras.stems_with_cover(song.stems.paths if song.stems else None),
        )
        if song.stems and flight.stems_pointer is not None:
            await run_blocking(None, self._cache.point_at_stems, flight.stems_pointer, flight.key)
        self._on_stored()
        return entry

    async def _separate(self, flight: Flight, audio: DecodedAudio, workdir: Path) -> SeparatedStems:
        """Run the song's segments through the workers; retry with shorter segments on OOM.

        On the CPU the model step is first-result work on the cores: re-renders pause
        meanwhile (``CpuBudget.occupied``), so the song is not slowed down by extras.
        """
        occupied = self._cpu.occupied(Lane.FIRST_RESULT)
        with occupied if self._model_on_cpu else contextlib.nullcontext():
            return await self._separate_in_attempts(flight, audio, workdir)

    async def _separate_in_attempts(
        self, flight: Flight, audio: DecodedAudio, workdir: Path
    ) -> SeparatedStems:
        assert self._batches is not None
        options = self._config.options
        progress = self._progress_callback(flight)
        for attempt in range(64):
            folder = workdir / f"attempt-{attempt}"
            folder.mkdir(mode=0o700)  # inside the private job folder
            job = SeparationJob(self.model, audio, folder, options, progress=progress)
            flight.job = job
            flight.separation_started_at = time.monotonic()
            entry = self._batches.add(job)
            try:
                await entry.finished
                return job.stems()
            except SegmentTooLargeError as error:
                options = self._shorter_segments(options, error)
            finally:
                self._batches.remove(entry)
                await entry.drained.wait()  # no worker still writes into this attempt
            await run_blocking(None, shutil.rmtree, folder, True)  # free the disk before retrying
        raise AssertionError("unreachable: segments halve towards a floor")

    def _shorter_segments(
        self, options: SeparationOptions, error: SegmentTooLargeError
    ) -> SeparationOptions:
        current = options.segment_seconds or float(self.model.segments[0])
        shorter = current / 2
        if shorter < self._config.min_segment_seconds:
            raise OutOfMemoryError(
                f"even {current:.1f}-second segments do not fit in the device's memory"
            ) from error
        logger.warning("one segment does not fit in memory; retrying with %.2f s", shorter)
        return dataclasses.replace(options, segment_seconds=shorter)

    def _progress_callback(self, flight: Flight) -> Callable[[float], None]:
        loop = asyncio.get_running_loop()

        def from_worker_thread(fraction: float) -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._report_progress, flight, fraction)

        return from_worker_thread

    def _report_progress(self, flight: Flight, fraction: float) -> None:
        now = time.monotonic()
        interval = self._config.progress_interval_seconds
        if fraction < 1.0 and now - flight.last_progress_at < interval:
            return
        flight.last_progress_at = now
        elapsed = now - flight.separation_started_at
        eta = elapsed * (1.0 - fraction) / fraction if fraction > 0 else None
        flight.publish(Running(round(fraction, 3), None if eta is None else round(eta, 1)))
        self._on_progress()


def fallback_title(request: SeparationRequest) -> str:
    return request.fallback_title or request.input_path.stem


def fit_encoding(
    request: SeparationRequest | RenderRequest, duration_seconds: float
) -> EncodingSpec:
    """Lower the MP3 bitrate to fit ``max_output_bytes`` (raises OutputTooLargeError)."""
    spec = request.encoding
    if request.max_output_bytes is None or spec.format != "mp3":
        return spec
    bitrate = choose_mp3_bitrate(
        duration_seconds,
        request.max_output_bytes,
        max_bitrate=spec.bitrate_kbps,
        min_bitrate=request.min_mp3_bitrate,
    )
    return dataclasses.replace(spec, bitrate_kbps=bitrate)


def bitrate(spec: EncodingSpec) -> int | None:
    if spec.format == "mp3":
        return spec.bitrate_kbps
    if spec.format == "opus":
        return min(spec.bitrate_kbps, 256)  # the encoder's cap (separation.audio.encode)
    return None


def outputs_metadata(
    duration_seconds: float,
    spec: EncodingSpec,
    input_tags: dict[str, str],
    gain: float,
    **more: object,
) -> dict[str, object]:
    """What a cache entry of rendered outputs records, a first render's or a re-render's
    (``more``: what only one of them has)."""
    return {
        "duration_seconds": duration_seconds,
        "bitrate_kbps": bitrate(spec),
        "input_tags": input_tags,
        "gain": gain,
        **more,
    }


def result_from_entry(entry: CacheEntry, *, cache_hit: bool) -> JobResult:
    """A caller's result from a cache entry (pinned for it)."""
    metadata = entry.metadata
    return JobResult(
        outputs=dict(entry.outputs),
        duration_seconds=float(metadata["duration_seconds"]),
        cache_hit=cache_hit,
        bitrate_kbps=metadata.get("bitrate_kbps"),
        cache_key=entry.key,
        input_tags=dict(metadata.get("input_tags", {})),
        tag_lyrics=tag_lyrics_of(metadata),
        lyrics_timing=_lyrics_timing(metadata),
        pin=entry.pin,
    )


def _lyrics_timing(metadata: dict[str, Any]) -> str | None:
    timing = metadata.get(LYRICS_TIMING)
    return timing if isinstance(timing, str) else None
