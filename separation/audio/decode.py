"""Decoding any input ffmpeg can read into float32 stereo at the model's sample rate.

Why it works this way:

* The header is read first (``separation.audio.probe``: libavformat's fields, never text that
  tags can forge) so a file whose container says it lasts three hours is refused in
  milliseconds.
* Every ffmpeg run on an upload goes through ``separation.audio.sandbox`` (no playlists, no
  network, no pictures decoded, OS limits); its deadlines scale with the duration limit,
  not with whatever the file claims.
* Headers can be missing or lie, so decoding itself is capped with ``-t`` at the limit plus
  one second: a tiny file that decodes to hours of silence costs at most a few seconds
  and ``limit`` seconds of disk, never memory. The decoded length, not the header's, is
  what callers charge (``DecodedAudio.duration_seconds``).
* Samples that are not finite (NaN, infinity) would poison the model's normalisation;
  such a file is refused as damaged before the model sees it.
* The decoded samples go to a raw float32 file in the job's folder, not into RAM. The
  engine reads the windows it needs with ``pread``; a 12-minute song then needs no more
  memory than a 2-minute one (users report plain Demucs being killed on long tracks).
* Mono is decoded as mono and duplicated here: ffmpeg's ``-ac 2`` upmix lowers a mono
  signal by 3 dB, while Demucs itself duplicates the channel.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from separation.audio.ffmpeg import ProbeResult, stderr_tail
from separation.audio.ffmpeg_args import command_line, file_url
from separation.audio.probe import probe
from separation.audio.sandbox import ChildLimits, run_sandboxed, untrusted_input
from separation.errors import (
    AudioTooLargeError,
    AudioTooLongError,
    CorruptAudioError,
    EmptyAudioError,
    NotAudioError,
)

logger = logging.getLogger(__name__)

MODEL_CHANNELS = 2
_BYTES_PER_SAMPLE = 4
_STATS_BLOCK_FRAMES = 1 << 20
# A decode that yields less than this share of the duration the header announced is a
# truncated upload, not a rounding difference.
_TRUNCATION_RATIO = 0.9
_TRUNCATION_MIN_SECONDS = 2.0


# Decoding runs at a hundred times real time or more, even on a busy CPU; these bound a
# wedged or hostile process, scaled to the longest song we accept.
_DECODE_BASE_SECONDS = 30.0
_DECODE_SECONDS_PER_AUDIO_SECOND = 0.1


@dataclass(frozen=True)
class AudioLimits:
    max_duration_seconds: float = 900.0
    max_input_bytes: int = 200_000_000
    ffmpeg_memory_bytes: int = 512 * 2**20
    """Address space of one ffmpeg child (a normal decode needs well under 100 MiB)."""
    probe_timeout_seconds: float = 20.0
    """Reading a header takes milliseconds; this only stops a wedged or hostile probe."""
    header_reader_python: str = sys.executable
    """The Python that reads headers with PyAV (``separation.audio.probe``), under the probe's
    limits: this one unless configured."""

    @property
    def cap_seconds(self) -> float:
        """How much audio a decode produces at most: one second past the limit, so that
        "longer than the limit" can be told from "exactly the limit"."""
        return self.max_duration_seconds + 1.0

    def probe_limits(self) -> ChildLimits:
        return ChildLimits(self.probe_timeout_seconds, self.ffmpeg_memory_bytes)

    @property
    def decode_seconds(self) -> float:
        """The deadline of a run that reads the whole song (a decode or a measurement)."""
        return _DECODE_BASE_SECONDS + _DECODE_SECONDS_PER_AUDIO_SECOND * self.cap_seconds

    def decode_limits(self, *, sample_rate: int, channels: int) -> ChildLimits:
        raw_bytes = math.ceil(self.cap_seconds * sample_rate) * channels * _BYTES_PER_SAMPLE
        return ChildLimits(self.decode_seconds, self.ffmpeg_memory_bytes, raw_bytes + 2**20)

    def measure_limits(self) -> ChildLimits:
        """A measurement writes no audio, only its progress lines."""
        return ChildLimits(self.decode_seconds, self.ffmpeg_memory_bytes)


@dataclass
class DecodedAudio:
    """A decoded song as a raw float32 file plus what we need to know about it.

    ``read(start, stop)`` returns ``(2, stop - start)`` float32 samples and zeros outside
    the song, which is exactly the zero padding Demucs applies at the edges.
    """

    raw_path: Path
    sample_rate: int
    file_channels: int
    frames: int
    mean: float
    std: float
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def duration_seconds(self) -> float:
        return self.frames / self.sample_rate

    def read(self, start: int, stop: int) -> np.ndarray:
        out = np.zeros((MODEL_CHANNELS, stop - start), dtype=np.float32)
        begin, end = max(start, 0), min(stop, self.frames)
        if end <= begin:
            return out
        frame_bytes = self.file_channels * _BYTES_PER_SAMPLE
        with open(self.raw_path, "rb") as handle:
            data = os.pread(handle.fileno(), (end - begin) * frame_bytes, begin * frame_bytes)
        block = np.frombuffer(data, dtype="<f4").reshape(-1, self.file_channels).T
        out[:, begin - start : end - start] = block  # broadcasts mono to both channels
        return out

    def read_all(self) -> np.ndarray:
        """The whole song in memory (tests and small inputs only)."""
        return self.read(0, self.frames)


def check_input_file(path: Path, limits: AudioLimits) -> None:
    """The cheapest check, before ffmpeg even runs: the size on disk."""
    size = path.stat().st_size
    if size == 0:
        raise EmptyAudioError()
    if size > limits.max_input_bytes:
        raise AudioTooLargeError(size_bytes=size, limit_bytes=limits.max_input_bytes)


def inspect_audio(path: Path, *, ffmpeg: str, limits: AudioLimits) -> ProbeResult:
    """Size and header checks: everything that can be refused without decoding.

    Raises:
        EmptyAudioError, AudioTooLargeError, NotAudioError, AudioTooLongError.
    """
    check_input_file(path, limits)
    info = probe(
        path, ffmpeg=ffmpeg, limits=limits.probe_limits(), python=limits.header_reader_python
    )
    if not info.opened:
        raise NotAudioError(detail=f"cannot open the input: {info.refusal}")
    if not info.has_audio:
        raise NotAudioError(detail="no audio stream")
    if info.duration_seconds is not None and info.duration_seconds > limits.max_duration_seconds:
        raise AudioTooLongError(
            duration_seconds=info.duration_seconds, limit_seconds=limits.max_duration_seconds
        )
    return info


def measure_duration(path: Path, *, ffmpeg: str, limits: AudioLimits) -> float:
    """The length of the first audio stream, for a file whose header does not say it.

    The packets are read and counted, not decoded (``-c copy``), up to the limit plus
    one second, under the decode's deadline: cheap, and bounded whatever the file
    claims. The real decode later settles the figure (see ``DecodedAudio``).

    Raises:
        AudioTooLongError: longer than ``limits.max_duration_seconds``.
        CorruptAudioError: no audio could be read.
        InputLimitError: a limit stopped ffmpeg.
    """
    first_audio = untrusted_input(ffmpeg, path)["a:0"]  # -map 0:a:0
    counted = first_audio.output("-", f="null", c="copy", t=f"{limits.cap_seconds:.3f}")
    command = command_line(
        ffmpeg, counted,
        "-hide_banner", "-nostdin", "-loglevel", "error", "-nostats", "-progress", "pipe:1",
    )  # fmt: skip
    run = run_sandboxed(command, limits.measure_limits(), what="measure")
    times = [
        line.split("=", 1)[1] for line in run.stdout.splitlines() if line.startswith("out_time_us=")
    ]
    if run.returncode != 0 or not times or not times[-1].strip().isdigit():
        raise CorruptAudioError(detail=stderr_tail(run.stderr) or "no audio packets")
    seconds = int(times[-1]) / 1e6
    if seconds > limits.max_duration_seconds:
        raise AudioTooLongError(duration_seconds=None, limit_seconds=limits.max_duration_seconds)
    return seconds


def decode_audio(
    path: Path,
    raw_path: Path,
    *,
    ffmpeg: str,
    sample_rate: int,
    limits: AudioLimits,
    info: ProbeResult | None = None,
) -> DecodedAudio:
    """Decode ``path`` to float32 at ``sample_rate`` into ``raw_path`` (in the job folder).

    Args:
        path: the input, stored under a name we chose (never the user's file name).
        raw_path: where the raw samples go; the caller removes the job folder afterwards.
        ffmpeg: the ffmpeg executable (``find_ffmpeg()``).
        sample_rate: the model's sample rate (44100 for every Demucs model).
        limits: maximum duration and size.
        info: the result of ``inspect_audio`` when already done.

    Returns:
        The decoded song, with the mean and standard deviation of its mono mix that
        Demucs normalises by.

    Raises:
        AudioInputError subclasses for every problem with the input.
    """
    if info is None:
        info = inspect_audio(path, ffmpeg=ffmpeg, limits=limits)
    file_channels = 1 if info.channels == 1 else MODEL_CHANNELS
    frames = _decode_samples(
        path, raw_path, info, file_channels, ffmpeg=ffmpeg, sample_rate=sample_rate, limits=limits
    )
    decoded = DecodedAudio(
        raw_path=raw_path, sample_rate=sample_rate, file_channels=file_channels,
        frames=frames, mean=0.0, std=0.0, tags=dict(info.tags),
    )  # fmt: skip
    decoded.mean, decoded.std = _mono_mix_stats(decoded)
    if decoded.std == 0.0:
        raise EmptyAudioError()
    return decoded


def _decode_samples(
    path: Path,
    raw_path: Path,
    info: ProbeResult,
    file_channels: int,
    *,
    ffmpeg: str,
    sample_rate: int,
    limits: AudioLimits,
) -> int:
    """Run the sandboxed ffmpeg that writes ``path``'s first audio stream to ``raw_path``
    as float32; the number of frames it wrote, once they are checked against the header
    and the limits.

    Raises:
        AudioInputError subclasses: ffmpeg failed, nothing decoded, too long, truncated.
    """
    first_audio = untrusted_input(ffmpeg, path)["a:0"]  # -map 0:a:0
    samples = first_audio.output(
        file_url(raw_path), f="f32le", vn=None, sn=None, dn=None,
        ac=str(file_channels), ar=str(sample_rate), t=f"{limits.cap_seconds:.3f}",
    )  # fmt: skip
    command = command_line(
        ffmpeg, samples, "-hide_banner", "-nostdin", "-loglevel", "error", overwrite=True
    )
    run = run_sandboxed(
        command,
        limits.decode_limits(sample_rate=sample_rate, channels=file_channels),
        what="decode",
    )
    frames = (
        raw_path.stat().st_size // (file_channels * _BYTES_PER_SAMPLE) if raw_path.exists() else 0
    )
    if run.returncode != 0:
        detail = stderr_tail(run.stderr)
        logger.info("ffmpeg failed decoding (rc=%s): %s", run.returncode, detail)
        raise CorruptAudioError(detail=detail)
    if frames == 0:
        # The header looked like audio but not one sample decoded.
        raise CorruptAudioError(detail=stderr_tail(run.stderr) or "no samples decoded")
    decoded_seconds = frames / sample_rate
    if decoded_seconds > limits.max_duration_seconds:
        raise AudioTooLongError(duration_seconds=None, limit_seconds=limits.max_duration_seconds)
    _check_not_truncated(info, decoded_seconds)
    if run.stderr:
        logger.debug("ffmpeg decode warnings: %s", stderr_tail(run.stderr))
    return frames


def _check_not_truncated(info: ProbeResult, decoded_seconds: float) -> None:
    announced = info.duration_seconds
    if announced is None or info.duration_is_estimate:
        return
    missing = announced - decoded_seconds
    if missing > _TRUNCATION_MIN_SECONDS and decoded_seconds < _TRUNCATION_RATIO * announced:
        raise CorruptAudioError(
            detail=f"decoded {decoded_seconds:.1f} s of an announced {announced:.1f} s"
        )


def _mono_mix_stats(decoded: DecodedAudio) -> tuple[float, float]:
    """Mean and unbiased std of the mono mix, as ``demucs.api.Separator`` computes them.

    Accumulated in float64 block by block so memory stays flat for long songs; the same
    pass refuses samples that are not finite.

    Raises:
        CorruptAudioError: a NaN or infinite sample.
    """
    total = 0.0
    total_sq = 0.0
    for start in range(0, decoded.frames, _STATS_BLOCK_FRAMES):
        stop = min(start + _STATS_BLOCK_FRAMES, decoded.frames)
        block = decoded.read(start, stop)
        if not np.isfinite(block).all():
            raise CorruptAudioError(
                detail=f"non-finite samples after {start / decoded.sample_rate:.1f} s"
            )
        mono = block.astype(np.float64).mean(axis=0)
        total += float(mono.sum())
        total_sq += float(np.square(mono).sum())
    count = decoded.frames
    mean = total / count
    variance = (total_sq - count * mean * mean) / max(count - 1, 1)
    return mean, float(np.sqrt(max(variance, 0.0)))
