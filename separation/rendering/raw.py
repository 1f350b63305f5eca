"""A render's outputs as temporary float32 files, written by ffmpeg, read back for the encoders.

``separation.rendering.controls`` reshapes the lossless stems with one ffmpeg run per
output. The clip gain must be known before the first sample is encoded, and a whole song
is never held in memory, so ffmpeg writes raw float32 to a pipe and Python keeps the peak
while copying it to a temporary file, block by block; the files are then read back piece
by piece into the one path of every render (``separation.rendering.outputs``). Between
pieces, the caller's pause point may block (a re-render is an extra, issue 20): ffmpeg
then fills its pipe and sleeps until we read or write again, using no CPU.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np

from separation.audio.ffmpeg import stderr_tail
from separation.errors import AudioExportError

_FLOAT_BYTES = 4
PAUSE_FRAMES = 1 << 14
"""Frames read from a render's ffmpeg, or fed to its encoders, between two pause points:
0.37 s of audio at 44.1 kHz, a few hundredths of a second of rubberband or of two MP3
encoders, so a waiting song gets the slot that soon. A piece costs one turn of a Python
loop; feeding the encoders whole ``render.BLOCK_FRAMES`` blocks (6 s) instead
could make a song wait a few tenths of a second for each slot it needs."""


class RawOutputs:
    """A render's outputs as temporary float32 files, each written by one ffmpeg run,
    with their peak kept on the way; read back piece by piece for the encoders."""

    def __init__(self, folder: Path, *, channels: int, pause: Callable[[], None]) -> None:
        """``folder``: private to this render (:meth:`scratch` makes one). ``pause``:
        called before each piece read from ffmpeg or from the files (ffmpeg or the
        encoders wait on their pipes meanwhile)."""
        self._folder = folder
        self._channels = channels
        self._pause = pause
        self._peaks: dict[str, float] = {}

    @classmethod
    @contextmanager
    def scratch(
        cls, near: Path, *, channels: int, pause: Callable[[], None]
    ) -> Iterator[RawOutputs]:
        """Outputs kept in a private folder made in ``near`` (on the disk meant for
        songs), removed with everything in it afterwards.

        Raises:
            AudioExportError: ``near`` cannot be written in.
        """
        try:
            folder = tempfile.TemporaryDirectory(prefix=".controls-", dir=near)
        except OSError as exc:
            raise AudioExportError(f"cannot write in {near}: {exc}", path=str(near)) from exc
        with folder as path:
            yield cls(Path(path), channels=channels, pause=pause)

    @property
    def channels(self) -> int:
        return self._channels

    def peak(self) -> float:
        """The peak of every output run so far (measured while they ran)."""
        return max(self._peaks.values())

    def run(self, name: str, command: list[str], *, unscale: float, output: Path) -> None:
        """Run ``command``, keep its float32 stdout times ``unscale`` as output ``name``.

        Raises:
            AudioExportError: ffmpeg failed (its stderr tail is in the error; ``output``
                is the file it was rendering for).
        """
        self._peaks[name] = _run_to_raw(
            command,
            self._path(name),
            unscale=unscale,
            channels=self._channels,
            output=output,
            pause=self._pause,
        )

    def blocks(self, names: list[str]) -> Iterator[dict[str, np.ndarray]]:
        return _raw_blocks({name: self._path(name) for name in names}, self._channels, self._pause)

    def _path(self, name: str) -> Path:
        return self._folder / f"{name}.f32"


def _run_to_raw(
    command: list[str],
    raw_path: Path,
    *,
    unscale: float,
    channels: int,
    output: Path,
    pause: Callable[[], None],
) -> float:
    """Run ``command``, copy its float32 stdout times ``unscale`` to ``raw_path``; the peak.
    ``pause`` is called before each piece is read (ffmpeg waits on its pipe meanwhile).

    Raises:
        AudioExportError: ffmpeg failed (its stderr tail is in the error).
    """
    frame_bytes = channels * _FLOAT_BYTES
    factor = np.float32(unscale)
    peak = 0.0
    with tempfile.TemporaryFile() as stderr, open(raw_path, "wb") as raw:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr
        )
        assert process.stdout is not None
        cut_mid_frame = False
        try:
            with process.stdout:
                # A short read happens only at the end of the stream, so every block but
                # the last is whole; a last one cut mid-frame means ffmpeg died writing it.
                while True:
                    pause()
                    chunk = process.stdout.read(PAUSE_FRAMES * frame_bytes)
                    if not chunk:
                        break
                    if cut_mid_frame := len(chunk) % frame_bytes != 0:
                        break
                    samples = np.frombuffer(chunk, "<f4")
                    if factor != 1.0:
                        samples = samples * factor
                    peak = max(peak, float(np.abs(samples).max()))
                    raw.write(samples.tobytes())
            process.wait()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        if process.returncode != 0 or cut_mid_frame:
            stderr.seek(0)
            detail = stderr_tail(stderr.read())
            raise AudioExportError(
                f"rendering {output.name} failed: ffmpeg exited with code "
                f"{process.returncode}: {detail}",
                path=str(output),
                stderr=detail,
            )
    return peak


def _raw_blocks(
    paths: dict[str, Path], channels: int, pause: Callable[[], None]
) -> Iterator[dict[str, np.ndarray]]:
    """The temporary float32 files block by block, ``{name: (channels, n)}``; ``pause``
    before each (the encoders wait on their pipes meanwhile)."""
    block_bytes = PAUSE_FRAMES * channels * _FLOAT_BYTES
    with ExitStack() as stack:
        files = {name: stack.enter_context(open(path, "rb")) for name, path in paths.items()}
        while True:
            pause()
            block = {
                name: np.frombuffer(data, "<f4").reshape(-1, channels).T
                for name, handle in files.items()
                if (data := handle.read(block_bytes))
            }
            if not block:
                return
            yield block
