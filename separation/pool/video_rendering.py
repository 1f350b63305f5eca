"""A karaoke video rendered from a song's kept stems (issue 24): a render like a key
change, with one more step.

The sound track is the instrumental exactly as an audio render makes it (key, tempo and
guide vocal through ``separation.rendering.controls.render_controls``, the one mixer),
written losslessly into the render's private job folder (or, for a video that changes
nothing, the kept instrumental stem itself); then
``separation.video.karaoke.make_karaoke_video`` puts the words over the song's kept
cover (or a calm colour) and encodes the MP4 into the entry's staging folder. The words
are timed on the *original-tempo* vocals stem (alignment, when they carry no times) and
then scaled by the tempo there, so a slower video's words are as well placed as the
original's.

Everything a render is, a video is too (``separation.pool.rendering``): cached under its
render key, in the CPU budget's preemptible lane (it pauses between the instrumental's
pieces and before the encode, never inside ffmpeg), counted against
``max_queued_renders``. It holds one CPU slot, so its encoder runs one thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from separation.audio.encode import EncodingSpec
from separation.cache.extras import LYRICS_TIMING, audio_stems, kept_cover
from separation.cache.results import CacheEntry
from separation.cpu_budget import PausePoint
from separation.jobs import INSTRUMENTAL, RenderRequest
from separation.lyrics.model import Timing
from separation.model.loading import VOCALS
from separation.rendering.controls import render_controls
from separation.rendering.outputs import RenderedOutputs
from separation.video.request import VIDEO

VIDEO_FILE = "karaoke.mp4"
VIDEO_SPEC = EncodingSpec(format="flac")
"""How a video's sound track is held between the mixer and the video encoder: lossless
(the encoder makes the one lossy copy), 24-bit like the stems themselves."""
VIDEO_AUDIO_WEIGHT = 4.0
"""A video's CPU cost in seconds of audio rendered per second of song, for the renders'
pace and queue estimates: one instrumental render (1) plus an H.264 + AAC encode of a
mostly still picture with subtitles, on one thread (about three audio renders' worth)."""


@dataclass(frozen=True)
class RenderedFiles:
    """What one render wrote, audio or video."""

    outputs: RenderedOutputs
    """The files and the gain (a video: ``{VIDEO: the mp4}`` and its sound track's)."""
    metadata: dict[str, object]
    """What the cache entry records besides an audio render's fields (a video's timing)."""


def render_video(
    source: CacheEntry,
    output_folder: Path,
    request: RenderRequest,
    *,
    ffmpeg: str,
    sample_rate: int,
    workdir: Path,
    pause_point: PausePoint,
) -> RenderedFiles:
    """On a worker thread: ``request``'s video of ``source``'s song into
    ``output_folder``, the sound track in ``workdir`` (a private job folder).

    Raises:
        LyricsInputError: the words cannot be used (the user's to fix; typed).
        VideoRenderError, OutputTooLargeError: the video could not be made or fit.
        AudioExportError: the sound track could not be rendered.
    """
    video = request.video
    if video is None:
        raise ValueError("not a video render")
    stems = audio_stems(source.stems)
    sound_track, gain = _sound_track(
        stems,
        float(source.metadata.get("stems_scale") or 1.0),
        request,
        ffmpeg=ffmpeg,
        sample_rate=sample_rate,
        workdir=workdir,
        pause_point=pause_point,
    )
    pause_point()  # the encode cannot pause: songs waiting go first
    # Loaded with the first video: it (pysubs2 and the aligner) adds 0.1 to 0.17 s to
    # every pool's start, songs without a video included.
    from separation.video.karaoke import make_karaoke_video

    output = output_folder / VIDEO_FILE
    timing: Timing = make_karaoke_video(
        video,
        instrumental=sound_track,
        vocals=stems.get(VOCALS),
        tempo=request.options.tempo,
        duration_seconds=float(source.metadata["duration_seconds"]) / request.options.tempo,
        output=output,
        ffmpeg=ffmpeg,
        workdir=workdir,
        max_bytes=request.max_output_bytes,
        threads=1,
        cover=kept_cover(source.stems),
    )
    return RenderedFiles(RenderedOutputs({VIDEO: output}, gain), {LYRICS_TIMING: timing.value})


def _sound_track(
    stems: dict[str, Path],
    scale: float,
    request: RenderRequest,
    *,
    ffmpeg: str,
    sample_rate: int,
    workdir: Path,
    pause_point: PausePoint,
) -> tuple[Path, float]:
    """The video's sound track and its gain: the kept instrumental stem itself when the
    video changes nothing and the stem is at the model's own levels (``scale`` 1.0: no
    output went past full scale, so no clip gain either), saving a pass over the song;
    else the instrumental rendered with the controls into ``workdir``."""
    if request.options.is_identity and INSTRUMENTAL in stems and scale == 1.0:
        return stems[INSTRUMENTAL], 1.0
    sound_track = workdir / f"{INSTRUMENTAL}.{VIDEO_SPEC.extension}"
    rendered = render_controls(
        stems,
        scale,
        {INSTRUMENTAL: sound_track},
        options=request.options,
        spec=VIDEO_SPEC,
        tags={},
        ffmpeg=ffmpeg,
        sample_rate=sample_rate,
        workdir=workdir,
        pause_point=pause_point,
    )
    return sound_track, rendered.gain
