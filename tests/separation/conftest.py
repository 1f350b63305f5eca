"""Fixtures for separation's tests: stems cut from real music."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from separation.audio.decode import DecodedAudio
from separation.model.engine import SeparatedStems
from tests.support.stems import stems_from


@pytest.fixture
def music_stems(tmp_path: Path, decoded_clip: DecodedAudio) -> SeparatedStems:
    """Four 'stems' cut from real music (so encoders see realistic signals), 3 s long."""
    frames = 3 * 44100
    mix = decoded_clip.read(0, frames)
    data = np.stack([mix * 0.1, mix * 0.2, mix * 0.3, mix * 0.4]).astype(np.float32)
    return stems_from(tmp_path, data)
