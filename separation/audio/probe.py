"""Reading an upload's header (length, first audio stream, tags) without decoding it.

The header is read first so that a file whose container says it lasts three hours is
refused in milliseconds. It used to be read from ``ffmpeg -i FILE``'s stderr banner with
regular expressions, which tags could break (issue 20): a tag named with fake
"Duration: 00:00:01.00" and "Stream #0:0: Audio: ... 8000 Hz, mono" lines made a song
read as one second of 8 kHz mono, and a song with 17 KB of embedded lyrics was refused
as "not audio" because the banner's first lines fell out of the 16 KiB of stderr kept.

Now libavformat's own structures are read, through PyAV, by ``separation.audio.header_reader``
in a child Python run by ``separation.audio.sandbox`` (same whitelists, same memory, CPU and
wall-clock limits as any ffmpeg run on an upload: a hostile file is never parsed in the
bot's process). The child prints one line of JSON, bounded in size; tag text can neither
forge a field nor push one out. Why PyAV rather than the alternatives:

* ffmpeg alone has no structured output that carries a container's duration (no
  ffprobe in imageio-ffmpeg; ``-print_graphs`` describes filters, not inputs;
  ``-f ffmetadata`` gives tags only; counting packets measures, it does not read the
  header, and ``decode.measure_duration`` already does that when the header is silent).
* mutagen reads tags and stream info in pure Python but knows neither Matroska/WebM (what
  most downloaders save) nor AVI, FLV, MPEG-TS, CAF, AMR...: those would still need the
  banner, forgeable as before.
* PyAV is the same libavformat that ffmpeg is built on (its wheel bundles it: 35 MB to
  download, about 100 MB installed), so every demuxer of ``sandbox.INPUT_DEMUXERS``
  reads the header it reads for ffmpeg (30 formats compared: the same duration, codec,
  rate, channels and tags), and the answer is typed fields. Starting Python and PyAV
  costs about 0.1 s more per upload than ``ffmpeg -i`` (115 ms against 17 ms), once
  per song.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

from separation.audio.ffmpeg import ProbeResult, stderr_tail
from separation.audio.ffmpeg_args import file_url
from separation.audio.header_reader import NO_PYAV_EXIT
from separation.audio.sandbox import ChildLimits, input_whitelists, run_sandboxed
from separation.errors import HeaderReaderError

logger = logging.getLogger(__name__)

_READER = Path(__file__).with_name("header_reader.py")


def probe(
    path: Path, *, ffmpeg: str, limits: ChildLimits, python: str = sys.executable
) -> ProbeResult:
    """Read ``path``'s header (no decoding: not even an attached picture).

    ``ffmpeg`` is the binary that will decode the file: its audio decoders are the only
    ones the header reader may open, so both refuse the same files. ``python`` runs the
    reader; it must have PyAV.

    Raises:
        InputLimitError: the reader ran past ``limits`` (a hostile file).
        HeaderReaderError: PyAV is not installed.
    """
    options = json.dumps(input_whitelists(ffmpeg))
    # -P: the reader's folder (this package) is not put on sys.path, so none of its
    # modules can stand in for one the reader imports; PYTHONPATH still applies, as
    # PyAV may be installed there (benchmarks/gpu_check.sh does that).
    command = [python, "-P", str(_READER), file_url(path), options]
    run = run_sandboxed(command, limits, what="probe")
    if run.returncode == NO_PYAV_EXIT:
        raise HeaderReaderError(f"cannot read headers: {stderr_tail(run.stderr)}")
    try:
        header = json.loads(run.stdout) if run.returncode == 0 else None
        return _probe_result(header)
    except (ValueError, TypeError, KeyError) as exc:
        # Not an answer of the reader's: a crash on this file, refused like one.
        reason = f"header reader failed (rc={run.returncode}): {stderr_tail(run.stderr) or exc}"
        logger.warning("probe: %s", reason)
        return _not_opened(reason)


def reader_version(python: str) -> str:
    """PyAV's version as ``python``, the header reader's, imports it (``karaoke-bot check``).

    Raises:
        HeaderReaderError: that Python does not run or cannot import PyAV.
    """
    try:
        completed = subprocess.run(
            [python, "-P", "-c", "import av; print(av.__version__)"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        raise HeaderReaderError(f"{python} does not run: {exc}") from exc
    if completed.returncode != 0:
        reason = stderr_tail(completed.stderr, lines=1)
        raise HeaderReaderError(f"{python} cannot import PyAV (pip install av): {reason}")
    return completed.stdout.strip()


def _probe_result(header: Any) -> ProbeResult:
    """The reader's JSON as a typed result; ``ValueError`` or ``TypeError`` when it is not."""
    if not isinstance(header, dict):
        raise ValueError("no JSON object")
    if not header["opened"]:
        return _not_opened(str(header["refusal"]))
    duration_us = _optional_int(header["duration_us"])
    audio = header["audio"]
    tags = header["tags"]
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise TypeError("tags are not strings")
    return ProbeResult(
        duration_seconds=duration_us / 1e6 if duration_us is not None else None,
        duration_is_estimate=bool(header["duration_is_estimate"]),
        has_audio=audio is not None,
        audio_codec=str(audio["codec"]) if audio and audio["codec"] else None,
        sample_rate=_optional_int(audio["sample_rate"]) if audio else None,
        channels=_optional_int(audio["channels"]) if audio else None,
        tags=tags,
        has_picture=bool(header["has_picture"]) if "has_picture" in header else None,
    )


def _optional_int(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"not an integer: {value!r}")
    return value


def _not_opened(refusal: str) -> ProbeResult:
    return ProbeResult(
        duration_seconds=None,
        duration_is_estimate=False,
        has_audio=False,
        audio_codec=None,
        sample_rate=None,
        channels=None,
        opened=False,
        refusal=refusal,
    )
