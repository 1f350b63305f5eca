"""Shared fixtures: real music from ../shared/data, tiny random models, ffmpeg, and the
servers (PostgreSQL, S3) some tests need. What they are built with lives in tests/support.

Models are saved to a temporary folder in Demucs' --repo layout and loaded back through
``separation.model.loading.load_model``, the same code path production uses.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from separation.audio.decode import AudioLimits, DecodedAudio, decode_audio
from separation.audio.ffmpeg import find_ffmpeg
from separation.model.loading import LoadedModel, load_model
from separation.model.random_models import (
    SIX_SOURCES,
    TINY_HTDEMUCS_KWARGS,
    build_htdemucs,
    save_repo_model,
)
from tests.support import hostile
from tests.support.media import SHARED_DATA, TEST_CLIP, make_telegram_songs
from tests.support.postgres import fresh_database
from tests.support.s3 import S3Server, running_s3_server


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


@pytest.fixture
def decoded_clip(tmp_path: Path, clip_path: Path, ffmpeg: str) -> DecodedAudio:
    return decode_audio(
        clip_path, tmp_path / "clip.f32", ffmpeg=ffmpeg, sample_rate=44100, limits=AudioLimits()
    )


@pytest.fixture(scope="session")
def telegram_songs(
    tmp_path_factory: pytest.TempPathFactory, clip_path: Path, ffmpeg: str
) -> dict[str, Path]:
    """Short real-music files in the forms Telegram users send (Discord's tests send the
    same ones)."""
    return make_telegram_songs(tmp_path_factory.mktemp("songs"), clip_path, ffmpeg)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The SQLAlchemy URL of a fresh, empty PostgreSQL database, one per test session
    (see :func:`tests.support.postgres.fresh_database`); skipped when unreachable."""
    with fresh_database() as url:
        yield url


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3-compatible server for the whole session, with an authenticated bucket
    (see :func:`tests.support.s3.running_s3_server`); skipped, with the reason, when
    none can be had. Tests sharing the bucket must use keys of their own."""
    with running_s3_server(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server
