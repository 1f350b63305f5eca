"""Separated stems made from arrays, for tests of what comes after the model (rendering,
encoding) without running one."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from separation.model.engine import SeparatedStems, _FloatFile

SOURCES = ["drums", "bass", "other", "vocals"]


def stems_from(
    tmp_path: Path, data: np.ndarray, mean: float = 0.0, std: float = 1.0
) -> SeparatedStems:
    """SeparatedStems from a ``(sources, channels, frames)`` array."""
    sources, channels, frames = data.shape
    file = _FloatFile(tmp_path / "stems.f32", frames, sources * channels)
    file.write(0, data.transpose(2, 0, 1).reshape(frames, sources * channels))
    return SeparatedStems(file, frames, SOURCES[:sources], channels, mean, std)
