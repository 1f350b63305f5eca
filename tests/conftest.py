"""Shared fixtures: real music from ../shared/data, tiny random models, ffmpeg.

Models are saved to a temporary folder in Demucs' --repo layout and loaded back through
``separation.models.load_model``, the same code path production uses.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from separation.decode import AudioLimits, DecodedAudio, decode_audio
from separation.ffmpeg import find_ffmpeg
from separation.models import LoadedModel, load_model
from separation.random_models import (
    SIX_SOURCES,
    TINY_HTDEMUCS_KWARGS,
    build_htdemucs,
    save_repo_model,
)
from tests import hostile

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TEST_CLIP = SHARED_DATA / "demucs-test-clip.mp3"  # 20 s MP3, pop/rock with vocals
FISHIN = SHARED_DATA / "lets-go-fishin.ogg"  # 2:13 Ogg Vorbis with tags
VIBE_ACE = SHARED_DATA / "vibe-ace.ogg"  # 1:01 Ogg Vorbis + embedded cover art


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not TEST_CLIP.exists():
        skip = pytest.mark.skip(reason=f"real music not found at {SHARED_DATA}")
        for item in items:
            if "shared_music" in item.fixturenames:
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def restore_logging():
    """``bot.cli.main`` and ``configure_logging`` replace the root handlers; put them back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    noisy = {name: logging.getLogger(name).level for name in logging.root.manager.loggerDict}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in noisy.items():
        logging.getLogger(name).setLevel(saved)


@pytest.fixture
def hanging_ffmpeg(tmp_path: Path, ffmpeg: str) -> str:
    """An "ffmpeg" that lists the real decoders but hangs on any input."""
    return hostile.hanging_ffmpeg(tmp_path, ffmpeg)


@pytest.fixture(scope="session")
def shared_music() -> Path:
    """The folder with real recordings (tests needing it skip with a reason if absent)."""
    return SHARED_DATA


@pytest.fixture(scope="session")
def ffmpeg() -> str:
    return find_ffmpeg()


@pytest.fixture(scope="session")
def model_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Demucs --repo folder with tiny random models: ``tiny``, ``tinybag``, ``tiny6``."""
    folder = tmp_path_factory.mktemp("models")
    first = build_htdemucs(TINY_HTDEMUCS_KWARGS, seed=0)
    second = build_htdemucs(TINY_HTDEMUCS_KWARGS, seed=1)
    save_repo_model(folder, "tiny", [first])
    # A bag like htdemucs_ft: each sub-model specialised on some sources.
    save_repo_model(
        folder, "tinybag", [first, second], weights=[[1.0, 0.0, 1.0, 0.5], [0.0, 1.0, 1.0, 0.5]]
    )
    save_repo_model(folder, "tiny6", [build_htdemucs(TINY_HTDEMUCS_KWARGS, SIX_SOURCES, seed=2)])
    return folder


@pytest.fixture(scope="session")
def tiny_model(model_repo: Path) -> LoadedModel:
    return load_model("tiny", repo=model_repo, device=torch.device("cpu"))


@pytest.fixture(scope="session")
def tiny_bag(model_repo: Path) -> LoadedModel:
    return load_model("tinybag", repo=model_repo, device=torch.device("cpu"))


@pytest.fixture(scope="session")
def clip_path(shared_music: Path) -> Path:
    return shared_music / "demucs-test-clip.mp3"


def generate(path: Path, ffmpeg: str, source: str, *args: str) -> Path:
    """Write ``path`` from one of ffmpeg's synthetic ``lavfi`` sources (sine, silence...)."""
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", source, *args,
         "-y", str(path)],
        check=True,
    )  # fmt: skip
    return path


def make_tone(
    path: Path, ffmpeg: str, *, seconds: float, channels: int = 2, rate: int = 44100
) -> Path:
    """A 440 Hz tone (format from the file extension)."""
    return generate(
        path,
        ffmpeg,
        f"sine=frequency=440:sample_rate={rate}:duration={seconds}",
        "-ac",
        str(channels),
    )


def excerpt(source: Path, target: Path, ffmpeg: str, seconds: float, *args: str) -> Path:
    """The first ``seconds`` of ``source``'s audio, converted with ffmpeg ``args``."""
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-i", str(source), "-t", str(seconds),
         "-map", "0:a:0", *args, "-y", str(target)],
        check=True,
    )  # fmt: skip
    return target


def make_video(target: Path, ffmpeg: str, audio_source: Path, seconds: float) -> Path:
    """An H.264 + AAC video whose sound is the first ``seconds`` of ``audio_source``."""
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi",
         "-i", f"color=c=blue:s=64x64:d={seconds}", "-i", str(audio_source), "-t", str(seconds),
         "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-c:a", "aac", "-shortest",
         "-y", str(target)],
        check=True,
    )  # fmt: skip
    return target


def decode_file(path: Path, ffmpeg: str, workdir: Path) -> DecodedAudio:
    """Decode a file (an output, usually) the way the bot decodes its inputs."""
    return decode_audio(
        path, workdir / f"{path.name}.f32", ffmpeg=ffmpeg, sample_rate=44100, limits=AudioLimits()
    )


def decode_bytes(content: bytes, name: str, ffmpeg: str, workdir: Path) -> DecodedAudio:
    """Decode uploaded bytes (what a fake chat server received) saved as ``name``."""
    path = workdir / name
    path.write_bytes(content)
    return decode_file(path, ffmpeg, workdir)


@pytest.fixture
def decoded_clip(tmp_path: Path, clip_path: Path, ffmpeg: str) -> DecodedAudio:
    return decode_audio(
        clip_path, tmp_path / "clip.f32", ffmpeg=ffmpeg, sample_rate=44100, limits=AudioLimits()
    )


def short_excerpt(audio: DecodedAudio, tmp_path: Path, seconds: float) -> DecodedAudio:
    """The first ``seconds`` of a decoded song, as its own DecodedAudio (for fast tests)."""
    frames = int(seconds * audio.sample_rate)
    samples = audio.read(0, frames)
    raw = tmp_path / f"excerpt-{seconds}.f32"
    np.ascontiguousarray(samples.T, dtype="<f4").tofile(raw)
    mono = samples.astype(np.float64).mean(axis=0)
    return DecodedAudio(
        raw_path=raw,
        sample_rate=audio.sample_rate,
        file_channels=2,
        frames=frames,
        mean=float(mono.mean()),
        std=float(mono.std(ddof=1)),
        tags=dict(audio.tags),
    )
