"""Encoding separated audio to MP3, Ogg Opus, FLAC or WAV through ffmpeg.

Samples are streamed into ffmpeg's stdin block by block, so a long song is never held in
memory as a whole, and several outputs are encoded by parallel ffmpeg processes fed from
one read of the stems. Files are written under a temporary name and renamed when ffmpeg
succeeded: a half-written result never looks complete. Export errors raise
:class:`AudioExportError`; they are never swallowed. ffmpeg-python builds the command
line and this module starts the process (``separation.audio.ffmpeg_args`` says why).
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeGuard, get_args

from separation.audio.ffmpeg import stderr_tail
from separation.audio.ffmpeg_args import command_line, file_url, input_stream
from separation.errors import AudioExportError, OutputTooLargeError

if TYPE_CHECKING:  # not at run time: the settings import the format names from here, and
    import numpy as np  # the CLI's admin commands must not wait for numpy (issue 23)

logger = logging.getLogger(__name__)

OutputFormat = Literal["mp3", "opus", "flac", "wav"]
# "two": instrumental + vocals (karaoke); "four": every source the model separates.
StemMode = Literal["two", "four"]
STEM_MODES: tuple[str, ...] = get_args(StemMode)


def is_stem_mode(value: object) -> TypeGuard[StemMode]:
    """Whether ``value`` names a stem mode: for parsers, which refuse anything else rather
    than guess (the stem mode is decided once, where the user's choice is read)."""
    return value in STEM_MODES


EXTENSIONS: dict[str, str] = {"mp3": "mp3", "opus": "opus", "flac": "flac", "wav": "wav"}
MP3_BITRATES = (320, 256, 224, 192, 160, 128, 112, 96, 80, 64, 56, 48, 40, 32)
# ID3 tags, the Xing/LAME header frame and rounding: a generous fixed allowance plus 1 %.
_MP3_FIXED_OVERHEAD_BYTES = 16 * 1024
_MP3_RELATIVE_OVERHEAD = 1.01


@dataclass(frozen=True)
class EncodingSpec:
    """What file to produce."""

    format: OutputFormat = "mp3"
    bitrate_kbps: int = 320
    """MP3 (CBR) and Opus bitrate."""
    wav_float: bool = True
    """WAV as 32-bit float (lossless for the model output) or 16-bit PCM."""

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]


@dataclass(frozen=True)
class Tags:
    title: str | None = None
    artist: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def as_ffmpeg_args(self) -> list[str]:
        args: list[str] = []
        for key, value in (("title", self.title), ("artist", self.artist), *self.extra.items()):
            if value:
                args += ["-metadata", f"{key}={_clean_tag(value)}"]
        return args


def _clean_tag(value: str, limit: int = 200) -> str:
    """Tags come from user files: keep them one line and bounded."""
    return " ".join(value.split())[:limit]


def estimate_mp3_bytes(duration_seconds: float, bitrate_kbps: int) -> int:
    return int(
        duration_seconds * bitrate_kbps * 1000 / 8 * _MP3_RELATIVE_OVERHEAD
        + _MP3_FIXED_OVERHEAD_BYTES
    )


def choose_mp3_bitrate(
    duration_seconds: float,
    budget_bytes: int,
    *,
    max_bitrate: int = 320,
    min_bitrate: int = 96,
) -> int:
    """The highest standard MP3 bitrate whose file of ``duration_seconds`` fits the budget.

    Chat platforms cap upload sizes (Discord 10 MiB by default, Telegram 50 MB); the
    adapters call this with their limit.

    Raises:
        OutputTooLargeError: even ``min_bitrate`` would not fit.
    """
    for bitrate in MP3_BITRATES:
        if min_bitrate <= bitrate <= max_bitrate and (
            estimate_mp3_bytes(duration_seconds, bitrate) <= budget_bytes
        ):
            return bitrate
    raise OutputTooLargeError(
        duration_seconds=duration_seconds, budget_bytes=budget_bytes, min_bitrate=min_bitrate
    )


def _codec_options(spec: EncodingSpec) -> dict[str, str]:
    """The output options (ffmpeg-python keywords: ``{"c:a": "flac"}`` is ``-c:a flac``)."""
    if spec.format == "mp3":
        return {
            "f": "mp3",
            "c:a": "libmp3lame",
            "b:a": f"{spec.bitrate_kbps}k",
            "id3v2_version": "3",
        }
    if spec.format == "opus":
        return {"f": "ogg", "c:a": "libopus", "b:a": f"{min(spec.bitrate_kbps, 256)}k"}
    if spec.format == "flac":
        return {"f": "flac", "c:a": "flac", "sample_fmt": "s32", "bits_per_raw_sample": "24"}
    codec = "pcm_f32le" if spec.wav_float else "pcm_s16le"
    return {"f": "wav", "c:a": codec}


def encoder_command(
    ffmpeg: str, path: Path, spec: EncodingSpec, tags: Tags, *, sample_rate: int, channels: int
) -> list[str]:
    """The command line that encodes raw float32 samples from stdin into ``path``."""
    samples = input_stream("pipe:0", f="f32le", ar=str(sample_rate), ac=str(channels))
    url = file_url(path)
    command = command_line(
        ffmpeg,
        samples.output(url, **_codec_options(spec)),
        "-hide_banner", "-nostdin", "-loglevel", "error",
        overwrite=True,
    )  # fmt: skip
    # Tags are added by hand: ffmpeg-python takes an output's options as a dict, so it
    # cannot repeat one, and each tag needs its own -metadata. They go just before the
    # output URL, with that output's other options.
    at = command.index(url)
    return [*command[:at], *tags.as_ffmpeg_args(), *command[at:]]


class StreamingEncoder:
    """One ffmpeg process that encodes float32 blocks written to it into ``path``."""

    def __init__(
        self,
        path: Path,
        spec: EncodingSpec,
        tags: Tags,
        *,
        ffmpeg: str,
        sample_rate: int,
        channels: int = 2,
    ) -> None:
        self.path = path
        self._partial = path.with_name(f".{path.name}.partial")
        self._stderr = tempfile.TemporaryFile()
        command = encoder_command(
            ffmpeg, self._partial, spec, tags, sample_rate=sample_rate, channels=channels
        )
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._stderr
        )

    def write(self, block: np.ndarray) -> None:
        """Write ``(channels, n)`` float32 samples, interleaved (``tobytes`` is C order)."""
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(block.T.astype("<f4", copy=False).tobytes())
        except BrokenPipeError:
            self._fail("ffmpeg stopped reading")

    def close(self) -> Path:
        """Finish the file and move it into place; returns its path."""
        assert self._process.stdin is not None
        try:
            self._process.stdin.close()
        except BrokenPipeError:
            pass
        if self._process.wait() != 0:
            self._fail(f"ffmpeg exited with code {self._process.returncode}")
        self._stderr.close()
        self._partial.replace(self.path)
        return self.path

    def abort(self) -> None:
        """Stop ffmpeg and remove the partial file (on any error)."""
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._stderr.close()
        self._partial.unlink(missing_ok=True)

    def _fail(self, reason: str) -> None:
        self._stderr.seek(0)
        detail = stderr_tail(self._stderr.read())
        self.abort()
        raise AudioExportError(
            f"encoding {self.path.name} failed: {reason}: {detail}",
            path=str(self.path),
            stderr=detail,
        )
