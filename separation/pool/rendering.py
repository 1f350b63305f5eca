"""Re-rendering a separated song (key, tempo, guide vocal) from the stems in its cache entry.

A render is a re-mix of the lossless stems kept with the separation's cache entry
(``separation.controls``): seconds of ffmpeg, never the model. Its outputs are cached
too, as an entry of their own keyed by the separation's key, the render options and the
encoding, so the same button pressed twice costs one render, and they live under the
same size, age, pin and manifest rules as every result. The ffmpeg runs hold the pool's
CPU slots (``separation.cpu_budget``) like every other ffmpeg of the pool, so renders
never oversubscribe the cores the model uses.

When the stems are gone (evicted, or an entry from before stems were kept), the render
fails with :class:`StemsExpiredError`: the user is told to send the song again.
"""

from __future__ import annotations

import logging
from pathlib import Path

from separation.cache import RENDER_OF, CacheEntry, ResultCache, cache_key
from separation.controls import render_controls
from separation.cpu_budget import CpuBudget
from separation.encode import EncodingSpec, Tags
from separation.errors import StemsExpiredError
from separation.jobs import JobResult, RenderRequest
from separation.offload import run_blocking
from separation.pipeline import output_tags
from separation.pool.processing import bitrate, fit_encoding, result_from_entry
from separation.render import RenderedOutputs
from separation.workdir import job_directory

logger = logging.getLogger(__name__)


def render_key(request: RenderRequest) -> str:
    """The cache key of a render: the separation's key plus what changes the bytes."""
    spec = request.encoding
    return cache_key(
        request.cache_key,
        {
            "render": request.options.cache_token(),
            "format": spec.format,
            "bitrate_kbps": spec.bitrate_kbps,
            "wav_float": spec.wav_float,
            "max_output_bytes": request.max_output_bytes,
            "min_mp3_bitrate": request.min_mp3_bitrate,
        },
    )


class Renderer:
    """Renders requests from a result cache's stems into that cache."""

    def __init__(self, cache: ResultCache, cpu: CpuBudget, *, ffmpeg: str, tmp_root: Path):
        self._cache = cache
        self._cpu = cpu
        self._ffmpeg = ffmpeg
        self._tmp_root = tmp_root

    async def render(self, request: RenderRequest, *, sample_rate: int) -> JobResult:
        """The rendered files, pinned for the caller (release them once delivered).

        Raises:
            StemsExpiredError: the separation's entry or its stems are gone.
            OutputTooLargeError: even the lowest bitrate would not fit.
            AudioExportError: ffmpeg failed.
        """
        key = render_key(request)
        cached = await run_blocking(None, self._cache.lookup, key)
        if cached is not None:
            return result_from_entry(cached, cache_hit=True)
        source = await run_blocking(None, self._cache.lookup, request.cache_key)
        if source is None or not source.stems:
            if source is not None and source.pin is not None:
                source.pin.release()
            raise StemsExpiredError(request.cache_key)
        try:
            entry = await self._render_from(source, key, request, sample_rate)
        finally:
            if source.pin is not None:
                source.pin.release()
        return result_from_entry(entry, cache_hit=False)

    async def _render_from(
        self, source: CacheEntry, key: str, request: RenderRequest, sample_rate: int
    ) -> CacheEntry:
        metadata = source.metadata
        options = request.options
        duration = float(metadata["duration_seconds"]) / options.tempo
        spec = fit_encoding(request, duration)
        names = list(source.outputs)
        tags = output_tags(
            dict(metadata.get("input_tags", {})),
            str(metadata.get("fallback_title") or "song"),
            names,
            options.title_suffix(),
        )
        staging = await run_blocking(None, self._cache.staging)
        try:
            async with self._cpu.audio(1):
                rendered = await run_blocking(
                    None,
                    self._render_files,
                    source,
                    {name: staging / f"{name}.{spec.extension}" for name in names},
                    request,
                    spec,
                    tags,
                    sample_rate,
                )
            logger.info(
                "rendered %s (%s) from %s", key[:12], options.cache_token(), source.key[:12]
            )
            return await run_blocking(
                None,
                self._cache.commit,
                key,
                staging,
                rendered.paths,
                {
                    "duration_seconds": duration,
                    "bitrate_kbps": bitrate(spec),
                    "input_tags": metadata.get("input_tags", {}),
                    "gain": rendered.gain,
                    RENDER_OF: source.key,  # evicted before it, never instead of it
                    "render": options.cache_token(),
                },
            )
        except BaseException:
            await run_blocking(None, self._cache.discard_staging, staging)
            raise

    def _render_files(
        self,
        source: CacheEntry,
        outputs: dict[str, Path],
        request: RenderRequest,
        spec: EncodingSpec,
        tags: dict[str, Tags],
        sample_rate: int,
    ) -> RenderedOutputs:
        """On a worker thread, in a private job folder removed afterwards."""
        with job_directory(self._tmp_root) as workdir:
            return render_controls(
                source.stems,
                float(source.metadata.get("stems_scale") or 1.0),
                outputs,
                options=request.options,
                spec=spec,
                tags=tags,
                ffmpeg=self._ffmpeg,
                sample_rate=sample_rate,
                workdir=workdir,
            )
