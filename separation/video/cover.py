"""A song's cover art (its attached picture), taken out of the upload for the video's
background.

The upload is a stranger's file, and a picture in it is exactly what the sandbox was
built against (issue 10: a 1.5 MB MP3 with a 16000x16000 cover cost 780 MB). So the
picture is read by the same hardened ffmpeg path as the audio
(``separation.audio.sandbox``: the ``file`` protocol only, audio containers only, OS
limits, a deadline), with two differences that let exactly one picture through:

* the decoders allowed are the picture formats tags carry (JPEG, PNG), and nothing else;
* ``max_pixels`` refuses a picture larger than :data:`MAX_SOURCE_PIXELS` before the
  decoder allocates it, and the memory limit stops whatever gets past that.

The same run scales it to at most :data:`MAX_SIDE` pixels a side and writes one JPEG: the
renderer only ever opens that small file of ours. A song without a picture, or with one
that cannot be read within the limits, has no cover (None), and its video gets the calm
colour instead: a bad picture never costs the user their video.
"""

from __future__ import annotations

import logging
from pathlib import Path

from separation.audio.ffmpeg import stderr_tail
from separation.audio.ffmpeg_args import command_line, file_url, input_stream
from separation.audio.sandbox import ChildLimits, input_whitelists, run_sandboxed
from separation.errors import InputLimitError

logger = logging.getLogger(__name__)

PICTURE_DECODERS = ("mjpeg", "png")
"""What ID3 APIC, FLAC/Vorbis pictures and MP4 ``covr`` hold in practice."""
MAX_SOURCE_PIXELS = 25_000_000
"""A 5000x5000 picture; covers are 3000x3000 at most (the stores' upper size)."""
MAX_SIDE = 1280
"""The re-encoded cover's longest side: more than the video's frame ever needs."""
COVER_LIMITS = ChildLimits(wall_seconds=20.0, memory_bytes=512 * 2**20, file_bytes=8 * 2**20)
"""Decoding one 25-megapixel JPEG takes well under a second and ~150 MB."""


def extract_cover(upload: Path, output: Path, *, ffmpeg: str) -> Path | None:
    """Write the upload's first attached picture to ``output`` as a JPEG of at most
    :data:`MAX_SIDE` pixels a side; None when it has none (or none we may read).

    Args:
        upload: the song as stored (a stranger's file).
        output: where the JPEG goes (in the job's folder).
        ffmpeg: the ffmpeg executable (``find_ffmpeg()``).
    """
    options = {
        **input_whitelists(ffmpeg),
        "codec_whitelist": ",".join(PICTURE_DECODERS),
        "max_pixels": str(MAX_SOURCE_PIXELS),
        "threads": "1",
    }
    picture = input_stream(file_url(upload), **options)["v:0"]
    fitted = picture.filter(
        "scale",
        f"min({MAX_SIDE},iw)",
        f"min({MAX_SIDE},ih)",
        force_original_aspect_ratio="decrease",
        force_divisible_by=2,
    )
    encoded = fitted.output(
        file_url(output), f="mjpeg", an=None, sn=None, dn=None, **{"frames:v": "1", "q:v": "3"}
    )
    command = command_line(
        ffmpeg, encoded, "-hide_banner", "-nostdin", "-loglevel", "error", overwrite=True
    )
    try:
        run = run_sandboxed(command, COVER_LIMITS, what="cover")
    except InputLimitError as exc:
        logger.info("cover art refused: %s", exc.detail)
        output.unlink(missing_ok=True)
        return None
    if run.returncode != 0 or not output.is_file() or output.stat().st_size == 0:
        # Most often: no picture at all ("matches no streams").
        logger.debug("no cover art: %s", stderr_tail(run.stderr) or run.returncode)
        output.unlink(missing_ok=True)
        return None
    return output
