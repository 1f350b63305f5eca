"""The one hardened way to open a file a stranger sent: ffmpeg, or the header reader.

A public bot decodes whatever anyone uploads, and ffmpeg is built to open anything:
playlists that name other files or URLs (HLS, concat), image sequences, subtitles, and
pictures embedded in audio files that even a header probe decodes in full. Each of those
was an attack on this bot (issue 10): a 100-byte ``.m3u8`` made it read and return a
file from the server, a live playlist held a job slot for sixteen minutes, a 1.5 MB MP3
with a 16000x16000 cover cost 780 MB before any check. So every ffmpeg run on an upload:

* reads it through the ``file`` protocol only (``-protocol_whitelist``): no entry of any
  playlist can reach the network or another protocol;
* lets only the demuxers in :data:`INPUT_DEMUXERS` open it (``-format_whitelist``): audio
  and video containers, never playlists, concat lists, images or subtitles. ffmpeg still
  probes the content to pick the demuxer, but uploads are stored without an extension
  (``storage.files``), so the user's file name never decides which demuxer runs;
* may open audio decoders only (``-codec_whitelist``), so attached pictures and video
  streams are never decoded, not even while the header is probed;
* runs under OS limits (address space, CPU time, size of what it writes) and a wall-clock
  deadline, so a file that gets past all of the above still costs bounded memory, time
  and disk.

The header reader (``separation.audio.header_reader``, PyAV's libavformat in a child Python)
gets the same whitelists (:func:`input_whitelists`) and runs under the same limits.

Every way such a run fails on account of the input becomes an
:class:`~separation.errors.AudioInputError` with one sentence for the user; the
measured wall time, CPU time and peak memory of the child are logged and returned.

ffmpeg-python builds the command lines (``separation.audio.ffmpeg_args``); this module runs
them (:func:`run_sandboxed`), because only our own code can add the limits and the
deadline.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import resource
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from separation.audio.ffmpeg_args import Stream, file_url, input_stream
from separation.errors import InputLimitError, SeparationError

logger = logging.getLogger(__name__)

INPUT_DEMUXERS: tuple[str, ...] = (
    # Names as ffmpeg's format whitelist matches them ("mov" covers mp4, m4a, 3gp...,
    # "matroska" covers webm). No hls, concat, image2, subtitle or network demuxer.
    "mp3", "mov", "matroska", "ogg", "flac", "wav", "w64", "aiff", "caf", "aac", "ac3",
    "eac3", "dts", "truehd", "asf", "avi", "flv", "mpegts", "mpeg", "amr", "ape", "wv",
    "tta", "au", "mpc", "mpc8", "tak", "shn", "dsf", "xwma",
)  # fmt: skip
"""Containers a song or a video with sound comes in. ``mov`` can follow references to
other files only with ``enable_drefs``, which is off by default and never turned on."""

_DECODER_THREADS = 2
_CHILD_ENVIRONMENT = {
    # glibc reserves 64 MiB of address space per thread arena, which an address-space
    # limit counts: two arenas keep a normal decode far below the limit.
    "MALLOC_ARENA_MAX": "2",
    "LC_ALL": "C",
}
_STDOUT_TAIL_BYTES = 64 * 1024
_STDERR_TAIL_BYTES = 16 * 1024
_MAX_LINE_CHARS = 300
_OUT_OF_MEMORY = ("Cannot allocate memory", "MemoryError")
"""How ffmpeg, and Python where the header reader cannot even start, say that the memory
limit refused them."""
_DIAGNOSTIC_FILE_BYTES = 16 * 1024 * 1024
"""What a run that writes no audio may write (its stderr and progress lines)."""


@dataclass(frozen=True)
class ChildLimits:
    """What one child (ffmpeg, or the header reader) may use before it is stopped."""

    wall_seconds: float
    memory_bytes: int
    """Address space (``RLIMIT_AS``): allocations beyond it fail inside the child."""
    file_bytes: int = _DIAGNOSTIC_FILE_BYTES
    """Largest file it may write (``RLIMIT_FSIZE``): the decoded audio, or its stderr."""

    @property
    def cpu_seconds(self) -> int:
        # A backstop behind the wall-clock deadline (ffmpeg uses a few threads at most).
        return math.ceil(self.wall_seconds) * 2 + 5


@dataclass(frozen=True)
class SandboxedRun:
    """How a finished child (ffmpeg or the header reader) ended and what it cost."""

    returncode: int
    stdout: str
    """The last 64 KiB (ffmpeg's progress lines, when asked for with ``-progress pipe:1``;
    the header reader's JSON)."""
    stderr: str
    wall_seconds: float
    cpu_seconds: float
    peak_memory_bytes: int
    """The child's ``ru_maxrss``. Linux carries the parent's peak into a child at exec,
    so from a large process (torch loaded) this is an upper bound, not ffmpeg's own
    figure; measure from a small process (``benchmarks/hostile_inputs.py``) for that."""


def untrusted_input(ffmpeg: str, path: Path) -> Stream:
    """An uploaded file as the input of an ffmpeg-python graph, with the sandbox's options.

    ``file_url`` keeps a name such as ``-y`` or ``concat:x`` from being read as an
    option or a protocol.
    """
    return input_stream(file_url(path), **_untrusted_input_options(ffmpeg))


def _untrusted_input_options(ffmpeg: str) -> dict[str, str]:
    """The input options of every run on an upload (applied to the ``-i`` after them)."""
    return {
        # Audio decodes in real time many times over on one thread; a fixed count keeps
        # the memory footprint (thread stacks, allocator arenas) independent of the host.
        "threads": str(_DECODER_THREADS),
        **input_whitelists(ffmpeg),
    }


def input_whitelists(ffmpeg: str) -> dict[str, str]:
    """What may open an upload, as libavformat options: the ``file`` protocol, the
    demuxers in :data:`INPUT_DEMUXERS`, ``ffmpeg``'s audio decoders.

    The same for ffmpeg's command lines and for the header reader (PyAV's libavformat,
    ``separation.audio.header_reader``), so both refuse the same files.
    """
    return {
        "protocol_whitelist": "file",
        "format_whitelist": ",".join(INPUT_DEMUXERS),
        "codec_whitelist": audio_decoders(ffmpeg),
    }


@functools.cache
def audio_decoders(ffmpeg: str) -> str:
    """This ffmpeg's audio decoders, comma-separated (the codec whitelist).

    Asked of the binary itself, so a build with more or fewer codecs needs no list here.

    Raises:
        SeparationError: the binary does not list any (not an ffmpeg we can use).
    """
    # Hand-written: ffmpeg-python compiles only a graph with an input and an output.
    completed = subprocess.run(
        [ffmpeg, "-hide_banner", "-decoders"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
        check=False,
    )
    listing = completed.stdout.decode(errors="replace")
    # A legend ("A..... = Audio") comes first, then " ------", then one decoder a line.
    _, _, decoders = listing.partition(" ------")
    names = [
        fields[1]
        for fields in (line.split() for line in decoders.splitlines())
        if len(fields) >= 2 and fields[0].startswith("A")
    ]
    if not names:
        raise SeparationError(f"{ffmpeg} lists no audio decoders (ffmpeg -decoders)")
    return ",".join(names)


def run_sandboxed(
    arguments: Sequence[str],
    limits: ChildLimits,
    *,
    what: str,
    environment: Mapping[str, str] | None = None,
) -> SandboxedRun:
    """Run a child on an untrusted input under ``limits``; raise when a limit stopped it.

    The child is ffmpeg, or the header reader (a Python that writes "Cannot allocate
    memory" to stderr as ffmpeg does when its memory limit stops it).

    ``what`` names the step in logs ("probe", "decode"...); ``environment`` adds to the
    child's (the video's fontconfig file, ``separation.video.fonts``). A non-zero exit for any other
    reason is returned, not raised: the caller knows what it means for its step.

    Raises:
        InputLimitError: the deadline passed, or a resource limit killed or starved it.
    """
    command, preexec = _limited(arguments, limits)
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        started = time.monotonic()
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            env={**os.environ, **_CHILD_ENVIRONMENT, **(environment or {})},
            preexec_fn=preexec,
        )
        status, usage, timed_out = _wait(process, limits.wall_seconds)
        run = SandboxedRun(
            returncode=process.returncode,
            stdout=_tail(stdout, _STDOUT_TAIL_BYTES),
            stderr=_lines_cut(_tail(stderr, _STDERR_TAIL_BYTES)),
            wall_seconds=time.monotonic() - started,
            cpu_seconds=usage.ru_utime + usage.ru_stime,
            peak_memory_bytes=usage.ru_maxrss * 1024,
        )
    logger.debug(
        "sandboxed %s: rc=%s %.2f s wall, %.2f s CPU, peak <= %.0f MiB",
        what, run.returncode, run.wall_seconds, run.cpu_seconds, run.peak_memory_bytes / 2**20,
    )  # fmt: skip
    reason = _limit_reason(run, status, timed_out, limits)
    if reason is not None:
        logger.info(
            "sandboxed %s stopped: %s (peak %.0f MiB)", what, reason, run.peak_memory_bytes / 2**20
        )
        raise InputLimitError(detail=f"{what}: {reason}")
    return run


def _limit_reason(
    run: SandboxedRun, status: int, timed_out: bool, limits: ChildLimits
) -> str | None:
    if timed_out:
        return f"no result within {limits.wall_seconds:.0f} s"
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        if number == signal.SIGXFSZ:
            return "wrote more than its file size limit"
        if number in (signal.SIGXCPU, signal.SIGKILL):
            return "used more than its CPU time limit"
        # A crash on a crafted file, often an allocation the memory limit refused.
        return f"killed by {signal.Signals(number).name}"
    if run.returncode != 0 and any(marker in run.stderr for marker in _OUT_OF_MEMORY):
        return f"needed more than {limits.memory_bytes / 2**20:.0f} MiB of memory"
    return None


def _limited(
    arguments: Sequence[str], limits: ChildLimits
) -> tuple[list[str], Callable[[], None] | None]:
    """The command line and child set-up that run ``arguments`` under ``limits``.

    util-linux's ``prlimit`` sets the limits and execs ffmpeg, so Python can start the
    child with vfork. A ``preexec_fn`` (the fallback where there is no prlimit) forces a
    full fork of this process instead, whose page tables grow with the model: 50 ms more
    per run from a 400 MB process, twice per song.
    """
    memory, cpu, file_bytes = _clamped(limits)
    prlimit = _prlimit()
    if prlimit is None:
        # The function only calls setrlimit, which takes no lock another thread could
        # hold at the fork.
        return list(arguments), functools.partial(_apply_limits, memory, cpu, file_bytes)
    flags = [f"--as={memory}", f"--cpu={cpu}:{cpu + 1}", f"--fsize={file_bytes}"]
    return [prlimit, *flags, "--", *arguments], None


@functools.cache
def _prlimit() -> str | None:
    return shutil.which("prlimit")


def _clamped(limits: ChildLimits) -> tuple[int, int, int]:
    """The limits, lowered to what this process may grant (a child cannot raise them)."""
    values = []
    for kind, wanted in (
        (resource.RLIMIT_AS, limits.memory_bytes),
        (resource.RLIMIT_CPU, limits.cpu_seconds),
        (resource.RLIMIT_FSIZE, limits.file_bytes),
    ):
        _, hard = resource.getrlimit(kind)
        values.append(wanted if hard == resource.RLIM_INFINITY else min(wanted, hard))
    return values[0], values[1], values[2]


def _apply_limits(memory_bytes: int, cpu_seconds: int, file_bytes: int) -> None:
    """Runs in the forked child just before exec (when there is no prlimit)."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    # The soft limit sends SIGXCPU, the hard one a second later SIGKILL.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))


def _wait(
    process: subprocess.Popen[bytes], timeout: float
) -> tuple[int, resource.struct_rusage, bool]:
    """Wait up to ``timeout`` s, kill on expiry; return (status, rusage, timed out).

    A pidfd makes waiting with a deadline and killing race-free (the pid cannot be
    reused before we reap it), and ``wait4`` gives this one child's peak memory.
    """
    pidfd = os.pidfd_open(process.pid)
    try:
        ready, _, _ = select.select([pidfd], [], [], max(timeout, 0.0))
        timed_out = not ready
        if timed_out:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    finally:
        os.close(pidfd)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return status, usage, timed_out


def _tail(file: IO[bytes], limit: int) -> str:
    size = file.seek(0, os.SEEK_END)
    file.seek(max(0, size - limit))
    return file.read().decode("utf-8", errors="replace")


def _lines_cut(text: str) -> str:
    # The codec whitelist is echoed in some warnings: a line of 2000 names helps nobody.
    # (Not stdout: the header reader's one line of JSON is bounded by the reader.)
    return "\n".join(line[:_MAX_LINE_CHARS] for line in text.splitlines())
