"""The model's output on disk: float32 rows in a file, and the stems read back from it.

A song's accumulators and its separated stems are as long as the song, so they live in
files read and written with ``pread``/``pwrite`` by rows (``separation.model.engine``
says why not ``mmap``); :class:`SeparatedStems` is what the engine hands to rendering.
``_FloatFile`` is private to ``separation.model``: only the engine makes them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class _FloatFile:
    """A float32 array of shape ``(frames, width)`` in a file, read and written by rows."""

    def __init__(self, path: Path, frames: int, width: int) -> None:
        self.path = path
        self.frames = frames
        self.width = width
        self._row_bytes = width * 4
        with open(path, "wb") as handle:
            handle.truncate(frames * self._row_bytes)  # sparse: reads as zeros

    def read(self, start: int, stop: int) -> np.ndarray:
        with open(self.path, "rb") as handle:
            data = os.pread(
                handle.fileno(), (stop - start) * self._row_bytes, start * self._row_bytes
            )
        return np.frombuffer(data, dtype=np.float32).reshape(stop - start, self.width).copy()

    def write(self, start: int, block: np.ndarray) -> None:
        data = np.ascontiguousarray(block, dtype=np.float32).tobytes()
        with open(self.path, "r+b") as handle:
            os.pwrite(handle.fileno(), data, start * self._row_bytes)

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)


@dataclass
class SeparatedStems:
    """The model's estimates for one song, on disk, read back in blocks."""

    _file: _FloatFile
    frames: int
    sources: list[str]
    channels: int
    mean: float
    std: float

    def read(self, start: int, stop: int, *, normalised: bool = False) -> np.ndarray:
        """Stems ``(sources, channels, n)``; by default back in the input's scale."""
        rows = self._file.read(start, stop).reshape(stop - start, len(self.sources), self.channels)
        stems = np.ascontiguousarray(rows.transpose(1, 2, 0))
        if normalised:
            return stems
        return stems * np.float32(self.std) + np.float32(self.mean)
