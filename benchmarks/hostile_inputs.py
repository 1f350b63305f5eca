"""Hostile uploads through the ingest path: wall time, ffmpeg memory and outcome per case.

Generates a corpus of hostile uploads in a temporary folder with the project's ffmpeg
(``separation.audio.ffmpeg.find_ffmpeg()``) and the real music in ../shared/data, then runs
every file through what production runs, each step in a fresh child process with
--project first on ``sys.path``:

* ``probe``: ``inspect_audio`` (the header check the chat flow runs first);
* ``decode``: ``inspect_audio`` then ``decode_input`` into a temporary job folder (what a
  worker runs), only when the probe accepted the file.

    python benchmarks/hostile_inputs.py                          # this checkout
    python benchmarks/hostile_inputs.py --project /tmp/before    # another checkout
    python benchmarks/hostile_inputs.py --only hls-vod-m3u8 lying-header --timeout 20

Columns:

* ``wall s``: seconds the step took inside the child (imports not counted);
  ``>T`` when the child was still running after --timeout T seconds and was killed,
  together with its ffmpeg processes.
* ``ffmpeg MiB``: peak resident memory of the child's ffmpeg and header-reader processes,
  ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` read in the child after the step. The probe
  and the decode run in separate children, so the decode figure is the larger of its
  own probe and decode. ``<=N``: the figure is not above the child's own peak RSS, N
  (Linux records the parent's RSS at every exec in the new process's ru_maxrss, so
  ru_maxrss of children never reads below it): ffmpeg stayed below N, which is 30-40
  MiB for the probe child and 220-260 MiB for the decode child (it imports torch).
  For a killed child, ``>=N`` is the largest ``VmHWM`` of its descendants sampled from
  /proc every 50 ms.
* ``net``: connections the local TCP listener of ``hls-remote`` accepted during the step.
* ``outcome``: ``ok <duration_seconds>`` (``n/a``: the header gives none), or the
  exception's class, its ``kind`` and its ``detail`` (first 80 characters).

The cases:

* ``benign-mp3``, ``benign-ogg``: the 20 s clip and the 2:13 song (references).
* ``hls-vod-m3u8``, ``hls-vod-m3u``, ``hls-noext``: an HLS playlist whose only segment is
  the absolute path of a "server secret" MP3 in another folder (local file read when
  the decode succeeds), named ``song.m3u8``, ``song.m3u`` and ``song``.
* ``hls-live-m3u8``: the same without ``#EXT-X-ENDLIST``: ffmpeg waits for new segments.
* ``hls-remote``: a playlist whose segment is ``http://127.0.0.1:PORT/a.ts``.
* ``ffconcat``: ``ffconcat version 1.0`` naming the secret MP3 by absolute path.
* ``image-seq``: one 64x64 PNG. ``subtitle-only``: an SRT file.
* ``cover-bomb-mp3``: 5 s MP3 carrying a 16000x16000 PNG (800 KB on disk, 768 MB as
  pixels) as an ID3v2.3 attached picture.
* ``cover-bomb-mkv``: 5 s of AAC in Matroska with 8 such PNGs as Matroska attachments
  (``-attach big.png -metadata:s:t:N mimetype=image/png``), which ffmpeg reads back
  as 8 ``(attached pic)`` video streams and decodes while probing. Muxing the PNGs as
  streams with ``-disposition:v attached_pic`` is accepted too, but Matroska drops the
  disposition: they come back as one-frame ``MPNG`` video tracks. A bare ``ffmpeg -i``
  with ffmpeg 9.0 takes 52 s and 5.8 GiB on the attachments, 33 s and 5.0 GiB on the
  tracks.
* ``lying-header``: an MP3 whose Xing/Info header says 5 s but which plays 150 s; see
  ``make_lying_header``. With ffmpeg 9.0: ``ffmpeg -i`` prints ``Duration: 00:00:05.00``
  and a full decode (``-f null -``) ends at ``time=00:02:30.04``.
* ``no-duration``: 60 s of AAC in Matroska written to a pipe, so without a Duration
  element: ``ffmpeg -i`` prints ``Duration: N/A``; it decodes to 60 s.
* ``nan-wav``: 5 s of IEEE float WAV (format tag 3) with NaN, +Inf and -Inf samples.
* ``truncated``: the first 30 % of the bytes of the 2:13 Ogg song.
* ``lyrics-1mb``, ``lyrics-24mb``: a 20 s stereo MP3 with 1 MB (24 MB) of lyrics in a
  tag; the old banner parser lost the header after 16 KiB of stderr (issue 20).
* ``forged-banner``: a 20 s stereo MP3 whose TXXX tag name holds fake ``Duration:
  00:00:01.00`` and ``Stream #0:0: Audio: pcm_s16le, 8000 Hz, mono`` lines.
* ``tags-10000``: a 20 s stereo MP3 with 10 000 TXXX tags, its title last.

Each child gets --timeout seconds (default 60). A probe that is refused or killed
leaves its decode row ``not run``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_PROJECT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SAMPLE_RATE = 44100
DETAIL_CHARS = 80
SAMPLE_INTERVAL_SECONDS = 0.05

# ---------------------------------------------------------------------------------------
# The measuring child: runs in a fresh interpreter, prints one JSON line per finished step.


def _outcome_of_error(exc: BaseException) -> str:
    parts = [type(exc).__name__]
    kind = getattr(exc, "kind", None)
    if kind is not None:
        parts.append(f"kind={kind}")
    detail = getattr(exc, "detail", None)
    if detail:
        detail = " ".join(str(detail).split())
        parts.append(detail if len(detail) <= DETAIL_CHARS else detail[: DETAIL_CHARS - 3] + "...")
    return " ".join(parts)


def _measure(step: str, action: Callable[[], float | None]) -> bool:
    """Run one step, print its JSON line; True when it succeeded."""
    started = time.perf_counter()
    try:
        duration = action()
    except Exception as exc:
        outcome, succeeded = _outcome_of_error(exc), False
    else:
        outcome = "ok n/a" if duration is None else f"ok {duration:.2f}"
        succeeded = True
    wall = time.perf_counter() - started
    record = {
        "step": step,
        "wall": wall,
        "outcome": outcome,
        "peak_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        "floor_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    print(json.dumps(record))
    sys.stdout.flush()
    return succeeded


def child_main(project: Path, step: str, path: Path) -> None:
    sys.path.insert(0, str(project))
    from separation.audio.decode import AudioLimits, inspect_audio
    from separation.audio.ffmpeg import find_ffmpeg

    ffmpeg = find_ffmpeg()

    def probe() -> float | None:
        return inspect_audio(path, ffmpeg=ffmpeg, limits=AudioLimits()).duration_seconds

    if not _measure("probe", probe) or step == "probe":
        return

    from separation.pipeline import PipelineConfig, decode_input

    def decode() -> float | None:
        with tempfile.TemporaryDirectory() as scratch:
            workdir = Path(scratch) / "job"
            workdir.mkdir()
            config = PipelineConfig(ffmpeg=ffmpeg, tmp_root=Path(scratch) / "tmp")
            audio = decode_input(path, workdir, config=config, sample_rate=SAMPLE_RATE)
            return float(audio.duration_seconds)

    _measure("decode", decode)


# ---------------------------------------------------------------------------------------
# The parent: process tree, memory sampling, timeouts, the TCP listener.


def _process_table() -> dict[int, int]:
    """pid -> parent pid of every process we can see."""
    parents = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command name is in parentheses and may contain anything; fields follow it.
        parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    return parents


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, parent in _process_table().items():
        children.setdefault(parent, []).append(pid)
    found, pending = [], [root]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def _high_water_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class TreePeakSampler:
    """Largest VmHWM among the descendants of ``root`` (not ``root`` itself)."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL_SECONDS):
            for pid in descendants(self.root):
                self.peak_kib = max(self.peak_kib, _high_water_kib(pid))

    def __enter__(self) -> TreePeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


def kill_tree(pid: int) -> None:
    """SIGKILL the child's process group and every descendant (even in other sessions)."""
    tree = descendants(pid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    for member in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGKILL)


class ConnectionCounter:
    """A TCP listener on 127.0.0.1 that accepts, counts and closes connections."""

    def __init__(self) -> None:
        self.count = 0
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            self.count += 1
            connection.close()

    def __enter__(self) -> ConnectionCounter:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self._socket.close()


@dataclass
class ChildRun:
    steps: list[dict[str, Any]]
    killed: bool
    sampled_peak_kib: int
    error: str = ""


def run_child(project: Path, step: str, path: Path, *, timeout: float, scratch: Path) -> ChildRun:
    command = [
        sys.executable, str(Path(__file__).resolve()),
        "--project", str(project), "--child", step, "--input", str(path),
    ]  # fmt: skip
    env = {**os.environ, "TMPDIR": str(scratch)}  # what a killed child leaves is ours to remove
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env, start_new_session=True,
    )  # fmt: skip
    killed = False
    try:
        with TreePeakSampler(process.pid) as sampler:
            try:
                stdout, stderr = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                killed = True
                kill_tree(process.pid)
                stdout, stderr = process.communicate()
    finally:
        if process.poll() is None:  # interrupted: leave nothing behind
            kill_tree(process.pid)
            process.wait()
    steps = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    error = ""
    if not killed and process.returncode != 0:
        lines = stderr.strip().splitlines()
        error = f"child exited {process.returncode}: {lines[-1] if lines else ''}"
    return ChildRun(steps, killed, sampler.peak_kib, error)


# ---------------------------------------------------------------------------------------
# The corpus.


class Corpus:
    """Generates the hostile files in ``folder``; the secret lives in ``secret_folder``."""

    def __init__(self, ffmpeg: str, folder: Path, secret_folder: Path, data: Path) -> None:
        self.ffmpeg = ffmpeg
        self.folder = folder
        self.secret_folder = secret_folder
        self.data = data
        self.port = 0  # the listener of the case being generated, when it has one

    def run_ffmpeg(self, *args: str, stdout: Any = subprocess.DEVNULL) -> None:
        subprocess.run(
            [self.ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args],
            stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.PIPE, check=True,
        )  # fmt: skip

    def header_duration(self, path: Path) -> str:
        """What ``ffmpeg -i`` says the duration is ("00:00:05.00", "N/A")."""
        completed = subprocess.run(
            [self.ffmpeg, "-hide_banner", "-nostdin", "-i", f"file:{path}"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False,
        )  # fmt: skip
        match = re.search(r"Duration: ([^,]+),", completed.stderr)
        return match.group(1) if match else "?"

    @staticmethod
    def sine(seconds: float, frequency: int = 440) -> list[str]:
        """Input arguments for a stereo sine of ``seconds``."""
        source = f"sine=frequency={frequency}:sample_rate={SAMPLE_RATE}:duration={seconds}"
        return ["-f", "lavfi", "-i", source, "-ac", "2"]

    @cached_property
    def secret_mp3(self) -> Path:
        path = self.secret_folder / "secret.mp3"
        self.run_ffmpeg(*self.sine(5, 660), "-c:a", "libmp3lame", str(path))
        return path

    @cached_property
    def big_png(self) -> Path:
        """16000x16000 red: 800 KB on disk, 768 MB of pixels (takes ~8 s and 2.7 GB)."""
        path = self.folder / "big.png"
        color = "color=c=red:s=16000x16000:d=1"
        self.run_ffmpeg("-f", "lavfi", "-i", color, "-frames:v", "1", str(path))
        return path

    def write(self, name: str, content: bytes | str) -> Path:
        path = self.folder / name
        if isinstance(content, str):
            content = content.encode()
        path.write_bytes(content)
        return path

    def playlist(self, name: str, segment: str, *, ended: bool = True) -> Path:
        lines = ["#EXTM3U", "#EXT-X-TARGETDURATION:5", "#EXTINF:5,", segment]
        if ended:
            lines.append("#EXT-X-ENDLIST")
        return self.write(name, "\n".join(lines) + "\n")


def copy_data(name: str) -> Callable[[Corpus], Path]:
    def make(corpus: Corpus) -> Path:
        return Path(shutil.copy(corpus.data / name, corpus.folder / name))

    return make


def secret_playlist(name: str, *, ended: bool = True) -> Callable[[Corpus], Path]:
    def make(corpus: Corpus) -> Path:
        return corpus.playlist(name, str(corpus.secret_mp3), ended=ended)

    return make


def make_hls_remote(corpus: Corpus) -> Path:
    return corpus.playlist("remote.m3u8", f"http://127.0.0.1:{corpus.port}/a.ts")


def make_ffconcat(corpus: Corpus) -> Path:
    return corpus.write("list.ffconcat", f"ffconcat version 1.0\nfile '{corpus.secret_mp3}'\n")


def make_image(corpus: Corpus) -> Path:
    path = corpus.folder / "image.png"
    corpus.run_ffmpeg("-f", "lavfi", "-i", "color=c=blue:s=64x64", "-frames:v", "1", str(path))
    return path


def make_subtitles(corpus: Corpus) -> Path:
    cues = "1\n00:00:00,000 --> 00:00:02,000\nHello\n\n2\n00:00:02,500 --> 00:00:05,000\nWorld\n"
    return corpus.write("song.srt", cues)


def make_cover_bomb_mp3(corpus: Corpus) -> Path:
    path = corpus.folder / "cover.mp3"
    corpus.run_ffmpeg(
        *corpus.sine(5), "-i", str(corpus.big_png),
        "-map", "0", "-map", "1", "-c:a", "libmp3lame", "-c:v", "copy",
        "-id3v2_version", "3", "-disposition:v", "attached_pic", str(path),
    )  # fmt: skip
    return path


def make_cover_bomb_mkv(corpus: Corpus, pictures: int = 8) -> Path:
    path = corpus.folder / "cover.mkv"
    attachments = []
    for index in range(pictures):
        attachments += [
            "-attach", str(corpus.big_png),
            f"-metadata:s:t:{index}", "mimetype=image/png",
            f"-metadata:s:t:{index}", f"filename=cover{index}.png",
        ]  # fmt: skip
    corpus.run_ffmpeg(*corpus.sine(5), "-c:a", "aac", *attachments, str(path))
    return path


def make_lying_header(corpus: Corpus, claimed: float = 5, extra: float = 145) -> Path:
    """A 5 s MP3 (with its Xing/Info frame) followed by 145 s more frames of the same format.

    libmp3lame writes an Info frame (frame count, byte count, TOC) on a seekable output;
    ffmpeg takes the duration from its frame count. ffmpeg also compares the Info byte
    count with the file size and, when the file is much larger, says "invalid
    concatenated file detected" and estimates from the bitrate instead, so the byte count
    is patched to the final size. No ID3v2 tag on either part, so the Info frame is first.
    """
    head, tail = corpus.folder / "head.mp3", corpus.folder / "tail.mp3"
    encode = ["-c:a", "libmp3lame", "-b:a", "128k", "-id3v2_version", "0"]
    corpus.run_ffmpeg(*corpus.sine(claimed), *encode, str(head))
    corpus.run_ffmpeg(*corpus.sine(extra, 550), *encode, "-write_xing", "0", "-f", "mp3", str(tail))
    data = bytearray(head.read_bytes())
    tag = max(data.find(b"Info", 0, 200), data.find(b"Xing", 0, 200))
    flags = struct.unpack(">I", data[tag + 4 : tag + 8])[0] if tag >= 0 else 0
    if flags & 0x3 != 0x3:  # the frame count and the byte count are both there
        raise RuntimeError("no Xing/Info frame with a frame count and a byte count")
    rest = tail.read_bytes()
    data[tag + 12 : tag + 16] = struct.pack(">I", len(data) + len(rest))
    path = corpus.write("lying.mp3", bytes(data) + rest)
    head.unlink()
    tail.unlink()
    announced = corpus.header_duration(path)
    if not announced.startswith("00:00:0"):
        raise RuntimeError(f"header says {announced}: not lying with this ffmpeg")
    return path


def make_no_duration(corpus: Corpus) -> Path:
    """Matroska written to a pipe has no Duration element (the muxer cannot seek back)."""
    path = corpus.folder / "noduration.mkv"
    with open(path, "wb") as handle:
        corpus.run_ffmpeg(
            *corpus.sine(60, 330), "-c:a", "aac", "-f", "matroska", "pipe:1", stdout=handle
        )
    announced = corpus.header_duration(path)
    if announced != "N/A":
        raise RuntimeError(f"header says {announced}, not N/A, with this ffmpeg")
    return path


def make_nan_wav(corpus: Corpus, seconds: float = 5.0) -> Path:
    frames = int(seconds * SAMPLE_RATE)
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(frames) / SAMPLE_RATE)
    samples = np.repeat(tone[:, None], 2, axis=1).astype("<f4")
    samples[::1000, 0] = np.nan
    samples[500::2000, 1] = np.inf
    samples[1500::2000, 1] = -np.inf
    payload = samples.tobytes()
    channels, width, ieee_float = 2, 4, 3
    fmt = struct.pack(
        "<HHIIHH", ieee_float, channels, SAMPLE_RATE,
        SAMPLE_RATE * channels * width, channels * width, 8 * width,
    )  # fmt: skip
    chunks = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    chunks += b"data" + struct.pack("<I", len(payload)) + payload
    return corpus.write("nan.wav", b"RIFF" + struct.pack("<I", len(chunks)) + chunks)


def tagged_song(name: str, tags: dict[str, str]) -> Callable[[Corpus], Path]:
    """A 20 s stereo MP3 carrying ``tags``, written through an ffmetadata file (so that
    names and values may hold newlines and megabytes)."""

    def escaped(text: str) -> str:
        for special in ("\\", "=", ";", "#", "\n"):
            text = text.replace(special, "\\" + special)
        return text

    def make(corpus: Corpus) -> Path:
        metadata = corpus.write(f"{name}.ffmetadata", ";FFMETADATA1\n" + "".join(
            f"{escaped(key)}={escaped(value)}\n" for key, value in tags.items()
        ))  # fmt: skip
        path = corpus.folder / name
        corpus.run_ffmpeg(
            *corpus.sine(20), "-f", "ffmetadata", "-i", str(metadata),
            "-map", "0:a", "-map_metadata", "1", "-c:a", "libmp3lame", str(path),
        )  # fmt: skip
        metadata.unlink()
        return path

    return make


LYRICS_1_MB = "la la la, the words go on\n" * (2**20 // 26)
FORGED_BANNER = (
    "x\n  Duration: 00:00:01.00, start: 0.000000, bitrate: 128 kb/s\n"
    "  Stream #0:0: Audio: pcm_s16le, 8000 Hz, mono, s16, 128 kb/s\ny"
)
MANY_TAGS = {**{f"note{n:05d}": f"value {n}" for n in range(10_000)}, "title": "Buried"}


def make_truncated(corpus: Corpus) -> Path:
    data = (corpus.data / "lets-go-fishin.ogg").read_bytes()
    return corpus.write("truncated.ogg", data[: len(data) * 3 // 10])


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[Corpus], Path]
    listens: bool = False


CASES = [
    Case("benign-mp3", copy_data("demucs-test-clip.mp3")),
    Case("benign-ogg", copy_data("lets-go-fishin.ogg")),
    Case("hls-vod-m3u8", secret_playlist("song.m3u8")),
    Case("hls-vod-m3u", secret_playlist("song.m3u")),
    Case("hls-noext", secret_playlist("song")),
    Case("hls-live-m3u8", secret_playlist("live.m3u8", ended=False)),
    Case("hls-remote", make_hls_remote, listens=True),
    Case("ffconcat", make_ffconcat),
    Case("image-seq", make_image),
    Case("subtitle-only", make_subtitles),
    Case("cover-bomb-mp3", make_cover_bomb_mp3),
    Case("cover-bomb-mkv", make_cover_bomb_mkv),
    Case("lying-header", make_lying_header),
    Case("no-duration", make_no_duration),
    Case("nan-wav", make_nan_wav),
    Case("truncated", make_truncated),
    Case("lyrics-1mb", tagged_song("lyrics1.mp3", {"lyrics": LYRICS_1_MB, "title": "Long"})),
    Case("lyrics-24mb", tagged_song("lyrics24.mp3", {"lyrics": LYRICS_1_MB * 24})),
    Case("forged-banner", tagged_song("forged.mp3", {FORGED_BANNER: "v", "title": "Forged"})),
    Case("tags-10000", tagged_song("many.mp3", MANY_TAGS)),
]

# ---------------------------------------------------------------------------------------
# Running the cases and printing the table.

ROW = "{case:<15} {step:<6} {wall:>8} {peak:>10} {net:>3}  {outcome}"


def print_row(case: str, step: str, wall: str, peak: str, net: str, outcome: str) -> None:
    print(ROW.format(case=case, step=step, wall=wall, peak=peak, net=net, outcome=outcome))
    sys.stdout.flush()


def report_child(
    case: Case, run: ChildRun, step: str, timeout: float, net: str
) -> dict[str, Any] | None:
    """Print the row of ``step`` from a child run; return the step's record if it has one."""
    record = next((s for s in run.steps if s["step"] == step), None)
    if record is not None:
        peak_kib, floor_kib = record["peak_kib"], record["floor_kib"]
        peak = f"{peak_kib / 1024:.0f}" if peak_kib > floor_kib else f"<={floor_kib / 1024:.0f}"
        print_row(case.name, step, f"{record['wall']:.2f}", peak, net, record["outcome"])
    elif run.killed:
        peak = f">={run.sampled_peak_kib / 1024:.0f}"
        outcome = f">{timeout:.0f} s (killed)"
        print_row(case.name, step, f">{timeout:.0f}", peak, net, outcome)
    else:
        print_row(case.name, step, "-", "-", net, run.error or "no result")
    return record


def run_case(case: Case, corpus: Corpus, project: Path, timeout: float, scratch: Path) -> None:
    listener = ConnectionCounter() if case.listens else None
    with listener or contextlib.nullcontext():
        if listener is not None:
            corpus.port = listener.port
        try:
            path = case.make(corpus)
        except (subprocess.CalledProcessError, RuntimeError, OSError) as exc:
            stderr = getattr(exc, "stderr", b"") or b""
            reason = stderr.decode(errors="replace").strip().splitlines()[-1:] or [str(exc)]
            print_row(case.name, "-", "-", "-", "", f"could not generate: {reason[0]}")
            return

        def net_since(before: int) -> str:
            return str(listener.count - before) if listener is not None else ""

        before = listener.count if listener else 0
        probe = run_child(project, "probe", path, timeout=timeout, scratch=scratch)
        record = report_child(case, probe, "probe", timeout, net_since(before))
        if record is None or not record["outcome"].startswith("ok"):
            reason = "probe killed" if probe.killed else "probe refused"
            print_row(case.name, "decode", "-", "-", "", f"not run ({reason})")
            return
        before = listener.count if listener else 0
        decode = run_child(project, "decode", path, timeout=timeout, scratch=scratch)
        report_child(case, decode, "decode", timeout, net_since(before))


def ffmpeg_version(ffmpeg: str) -> str:
    completed = subprocess.run(
        [ffmpeg, "-version"], stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
    )
    return (completed.stdout.splitlines() or ["?"])[0]


def project_revision(project: Path) -> str:
    completed = subprocess.run(
        ["git", "-C", str(project), "log", "-1", "--format=%h %s"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False,
    )  # fmt: skip
    return completed.stdout.strip()[:90] or "not a git checkout"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=DEFAULT_PROJECT)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per child")
    parser.add_argument("--only", nargs="+", choices=[case.name for case in CASES])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the real music")
    parser.add_argument("--child", choices=["probe", "decode"], help=argparse.SUPPRESS)
    parser.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    project = args.project.resolve()
    if args.child:
        child_main(project, args.child, args.input)
        return

    sys.path.insert(0, str(project))
    ffmpeg_module = importlib.import_module("separation.audio.ffmpeg")
    ffmpeg: str = ffmpeg_module.find_ffmpeg()
    print(f"project: {project} ({project_revision(project)})")
    print(f"separation: {Path(ffmpeg_module.__file__).parent}")
    print(f"ffmpeg: {ffmpeg}")
    print(f"        {ffmpeg_version(ffmpeg)}")
    print(f"timeout: {args.timeout:.0f} s per child\n")
    print_row("case", "step", "wall s", "ffmpeg MiB", "net", "outcome")

    cases = [case for case in CASES if not args.only or case.name in args.only]
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="hostile-corpus-") as folder,
        tempfile.TemporaryDirectory(prefix="hostile-secret-") as secret_folder,
        tempfile.TemporaryDirectory(prefix="hostile-scratch-") as scratch,
    ):
        corpus = Corpus(ffmpeg, Path(folder), Path(secret_folder), args.data)
        for case in cases:
            run_case(case, corpus, project, args.timeout, Path(scratch))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
