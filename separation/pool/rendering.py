"""Re-rendering a separated song (key, tempo, guide vocal) from the stems in its cache entry.

A render is a re-mix of the lossless stems kept with the separation's cache entry
(``separation.rendering.controls``): seconds of ffmpeg, never the model. Its outputs are cached
too, as an entry of their own keyed by the separation's key, the render options and the
encoding, so the same button pressed twice costs one render, and they live under the
same size, age, pin and manifest rules as every result. The ffmpeg runs hold the pool's
CPU slots (``separation.cpu_budget``) like every other ffmpeg of the pool, so renders
never oversubscribe the cores the model uses.

A re-render is an extra (issue 20): it runs in the budget's after-the-fact lane, so
songs waiting for their first result take the slot first, even from a render under
way (it pauses between pieces, ``CpuBudget.preemptible``). And at most
``PoolConfig.max_queued_renders`` of them are queued or running at once; beyond that a
press is refused at once with :class:`RendersBusyError` and an estimate of when a place
frees up, so a storm of presses cannot build a backlog that outlives everyone's
patience. Cache hits are neither counted nor refused: they cost no CPU.

A karaoke video (``RenderRequest.video``, issue 24) is a render too, with the same
cache, lane, bound and errors: the instrumental with the controls, then the words over
the song's cover (``separation.pool.video_rendering``).

When the stems are gone (evicted, or an entry from before stems were kept), the render
fails with :class:`StemsExpiredError`: the user is told to send the song again.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from separation.audio.encode import EncodingSpec
from separation.audio.render_options import RenderOptions
from separation.cache.extras import TAG_LYRICS, audio_stems
from separation.cache.render_keys import render_key
from separation.cache.results import RENDER_OF, CacheEntry, ResultCache
from separation.cpu_budget import CpuBudget, Lane, PausePoint
from separation.errors import PoolShutdownError, RendersBusyError, StemsExpiredError
from separation.jobs import INSTRUMENTAL, JobResult, RenderRequest, SeparationRequest
from separation.model.loading import VOCALS
from separation.model.offload import run_blocking
from separation.pool.processing import fit_encoding, outputs_metadata, result_from_entry
from separation.pool.video_rendering import (
    VIDEO_AUDIO_WEIGHT,
    VIDEO_SPEC,
    RenderedFiles,
    render_video,
)
from separation.rendering.controls import render_controls
from separation.rendering.outputs import output_tags
from separation.workdir import job_directory

logger = logging.getLogger(__name__)

FIRST_PACE_GUESS = 0.25
"""Seconds of rendering per second of audio until a render was measured (a two-output
key change of a song with a tiny model's stems, 2 cores: about 0.1-0.2)."""
_PACE_WEIGHT = 0.3
"""How much the latest render moves the pace (an exponential moving average)."""


@dataclass(eq=False)
class _Place:
    """One re-render queued or running, and the seconds of audio it will write."""

    audio_seconds: float = 0.0


class Renderer:
    """Renders requests from a result cache's stems into that cache."""

    def __init__(
        self,
        cache: ResultCache,
        cpu: CpuBudget,
        *,
        ffmpeg: str,
        tmp_root: Path,
        max_queued: int,
    ) -> None:
        self._cache = cache
        self._cpu = cpu
        self._ffmpeg = ffmpeg
        self._tmp_root = tmp_root
        self._max_queued = max_queued
        self._places: list[_Place] = []
        """After-the-fact renders queued or running, oldest first."""
        self._pace = FIRST_PACE_GUESS
        """Seconds a render held its slot per second of audio written, lately."""
        # Renders' own threads: a paused render blocks its thread until the songs before
        # it are done, and those songs need the loop's default executor to get done.
        self._threads = ThreadPoolExecutor(
            max_workers=cpu.plan.audio_slots, thread_name_prefix="render"
        )
        self._closed = False

    def close(self) -> None:
        """Let the render threads go; a render still waiting for a slot then fails with
        ``PoolShutdownError``."""
        self._closed = True
        self._threads.shutdown(wait=False)

    @property
    def queued(self) -> int:
        """Re-renders queued or running (those counted against ``max_queued``)."""
        return len(self._places)

    def retry_after(self) -> float:
        """When a place in line should free up: renders run in line, so about when the
        next one finishes, from the pace of the latest ones (at least 1 s)."""
        head = self._places[: self._cpu.plan.audio_slots]
        if not head:
            return 1.0
        return max(1.0, self._pace * min(place.audio_seconds for place in head))

    async def cached(self, request: RenderRequest) -> JobResult | None:
        """The request's files if they were rendered before (pinned), else None."""
        entry = await run_blocking(None, self._cache.lookup, render_key(request))
        if entry is None:
            return None
        await run_blocking(None, self._cache.touch, request.cache_key)  # its song is in use
        return result_from_entry(entry, cache_hit=True)

    async def from_stems(
        self, request: SeparationRequest, pointers: list[str], *, sample_rate: int
    ) -> JobResult | None:
        """``request``'s outputs encoded from a song's kept stems, or None when no stems
        are kept: another format, bitrate or a two-stem result of a four-stem separation
        is a render with no change (seconds of ffmpeg), never a forward pass (issue 23).

        ``pointers``: the stems pointers to try, in order (``SeparationPool``,
        ``ResultCache.point_at_stems``). The result's entry keeps the stems too
        (:func:`_kept_stems`), so its ``cache_key`` is all its buttons, a distributed
        worker publishing it and a front-end downloading it need.
        """
        for pointer in pointers:
            source_key = await run_blocking(None, self._cache.stems_pointed_at, pointer)
            if source_key is None:
                continue
            render = RenderRequest(
                source_key,
                RenderOptions(),
                encoding=request.encoding,
                max_output_bytes=request.max_output_bytes,
                min_mp3_bitrate=request.min_mp3_bitrate,
                lane=Lane.FIRST_RESULT,  # a song someone waits for, not an extra
                stems=request.stems,
            )
            try:
                return await self.render(render, sample_rate=sample_rate)
            except StemsExpiredError:  # the pointer outlived its song: separate afresh
                continue
        return None

    async def render(self, request: RenderRequest, *, sample_rate: int) -> JobResult:
        """The rendered files, pinned for the caller (release them once delivered).

        Raises:
            RendersBusyError: too many re-renders queued (not for a first result's).
            StemsExpiredError: the separation's entry or its stems are gone.
            OutputTooLargeError: even the lowest bitrate would not fit.
            AudioExportError: ffmpeg failed.
        """
        cached = await self.cached(request)
        if cached is not None:
            return cached
        key = render_key(request)
        place = None
        if request.lane is not Lane.FIRST_RESULT:
            if len(self._places) >= self._max_queued:
                raise RendersBusyError(retry_after_seconds=self.retry_after())
            place = _Place()
            self._places.append(place)
        try:
            return await self._render_missing(request, key, sample_rate, place)
        finally:
            if place is not None:
                self._places.remove(place)

    async def _render_missing(
        self, request: RenderRequest, key: str, sample_rate: int, place: _Place | None
    ) -> JobResult:
        source = await run_blocking(None, self._cache.lookup, request.cache_key)
        if source is None or not audio_stems(source.stems):
            if source is not None and source.pin is not None:
                source.pin.release()
            raise StemsExpiredError(request.cache_key)
        if place is not None:
            place.audio_seconds = self._audio_seconds(source, request)
        try:
            entry = await self._render_from(source, key, request, sample_rate)
        finally:
            if source.pin is not None:
                source.pin.release()
        return result_from_entry(entry, cache_hit=False)

    @staticmethod
    def _audio_seconds(source: CacheEntry, request: RenderRequest) -> float:
        """Seconds of audio a render writes: every output, at the new tempo (a video
        weighs as several, ``VIDEO_AUDIO_WEIGHT``)."""
        duration = float(source.metadata["duration_seconds"]) / request.options.tempo
        if request.video is not None:
            return duration * VIDEO_AUDIO_WEIGHT
        return duration * len(_output_names(source, request))

    async def _render_from(
        self, source: CacheEntry, key: str, request: RenderRequest, sample_rate: int
    ) -> CacheEntry:
        metadata = source.metadata
        options = request.options
        duration = float(metadata["duration_seconds"]) / options.tempo
        # A video's sound track is lossless until its encoder; ``encoding`` is ignored.
        spec = fit_encoding(request, duration) if request.video is None else VIDEO_SPEC
        staging = await run_blocking(None, self._cache.staging)
        try:
            async with self._cpu.preemptible(request.lane) as pause_point:
                if self._closed:  # the pool stopped while this render waited for a slot
                    raise PoolShutdownError()
                started = time.monotonic()
                rendered = await run_blocking(
                    self._threads,
                    self._render_files,
                    source,
                    staging,
                    request,
                    spec,
                    sample_rate,
                    pause_point,
                )
                self._measured(time.monotonic() - started, self._audio_seconds(source, request))
            logger.info(
                "rendered %s (%s%s) from %s",
                key[:12],
                options.cache_token(),
                ", video" if request.video is not None else "",
                source.key[:12],
            )
            stems = await run_blocking(None, _kept_stems, source, staging, options)
            return await run_blocking(
                None,
                self._cache.commit,
                key,
                staging,
                rendered.outputs.paths,
                outputs_metadata(
                    duration,
                    spec,
                    metadata.get("input_tags", {}),
                    rendered.outputs.gain,
                    **{RENDER_OF: source.key},  # evicted before it, never instead of it
                    render=options.cache_token(),
                    fallback_title=metadata.get("fallback_title"),
                    stems_scale=metadata.get("stems_scale"),
                    **{TAG_LYRICS: metadata.get(TAG_LYRICS)},  # the song's words, its buttons'
                    **rendered.metadata,
                ),
                stems,
            )
        except BaseException:
            await run_blocking(None, self._cache.discard_staging, staging)
            raise

    def _render_files(
        self,
        source: CacheEntry,
        staging: Path,
        request: RenderRequest,
        spec: EncodingSpec,
        sample_rate: int,
        pause_point: PausePoint,
    ) -> RenderedFiles:
        """On a worker thread, in a private job folder removed afterwards: the audio
        outputs, or the video (``separation.pool.video_rendering``)."""
        with job_directory(self._tmp_root) as workdir:
            if request.video is not None:
                return render_video(
                    source,
                    staging,
                    request,
                    ffmpeg=self._ffmpeg,
                    sample_rate=sample_rate,
                    workdir=workdir,
                    pause_point=pause_point,
                )
            names = _output_names(source, request)
            metadata = source.metadata
            tags = output_tags(
                dict(metadata.get("input_tags", {})),
                str(metadata.get("fallback_title") or "song"),
                names,
                request.options,
            )
            rendered = render_controls(
                audio_stems(source.stems),
                float(metadata.get("stems_scale") or 1.0),
                {name: staging / f"{name}.{spec.extension}" for name in names},
                options=request.options,
                spec=spec,
                tags=tags,
                ffmpeg=self._ffmpeg,
                sample_rate=sample_rate,
                workdir=workdir,
                pause_point=pause_point,
            )
            return RenderedFiles(rendered, {})

    def _measured(self, seconds: float, audio_seconds: float) -> None:
        """A render held its slot ``seconds`` (pauses for songs included) for this much
        audio: the pace :meth:`retry_after` estimates with."""
        if audio_seconds > 0:
            pace = seconds / audio_seconds
            self._pace += _PACE_WEIGHT * (pace - self._pace)


def _output_names(source: CacheEntry, request: RenderRequest) -> list[str]:
    """What a render writes: the separation's own outputs, or the two-stem pair (which
    a four-stem separation's stems give as well: the instrumental is every other stem)."""
    if request.stems == "two":
        return [INSTRUMENTAL, VOCALS]
    return list(source.outputs)


def _kept_stems(
    source: CacheEntry, staging: Path, options: RenderOptions
) -> dict[str, Path] | None:
    """The source's stems, linked into a render's staging folder when the render changes
    nothing (the song in another format or stem mode): that entry is then a song of its
    own whose buttons work and whose key names every file a distributed worker publishes.
    Hard links cost no disk (the size limit counts them twice, erring on the safe side);
    a copy where links are not possible. None for a key, tempo or guide change."""
    if not options.is_identity:
        return None
    kept: dict[str, Path] = {}
    for name, path in source.stems.items():
        target = staging / path.name
        try:
            os.link(path, target)
        except OSError:
            shutil.copyfile(path, target)
        kept[name] = target
    return kept
