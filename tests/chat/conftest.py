"""Fixtures for the chat flow's tests: a flow on the real store, pool and ffmpeg, and a
short real song to send it (the recorder standing in for the platform is in
tests/support/chat.py)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.chat.conversation.flow import ChatFlow
from bot.links.service import LinkService
from bot.process.wiring import flow_config
from bot.settings import Settings
from bot.settings.links import LinksSettings
from storage.store import Store
from tests.support.bot_app import make_pool
from tests.support.link_servers import LinkServer, running_link_server
from tests.support.media import excerpt


@contextlib.asynccontextmanager
async def _running_flow(
    tmp_path: Path, model_repo: Path, links: LinkService | None = None
) -> AsyncIterator[ChatFlow]:
    settings = Settings.model_validate(
        {
            "general": {"data_dir": str(tmp_path / "data")},
            "model": {"name": "tiny", "repo": str(model_repo), "device": "cpu"},
        }
    )
    pool = make_pool(settings)
    await pool.start()
    store = await Store.open(settings.database_url, settings.general.data_dir)
    config = dataclasses.replace(flow_config(settings), progress_interval_seconds=0.05)
    try:
        yield ChatFlow(store=store, backend=pool, config=config, links=links)
    finally:
        await pool.shutdown(5)
        await store.close()


@pytest.fixture
async def flow(tmp_path, model_repo) -> AsyncIterator[ChatFlow]:
    """A chat flow on a real store and a started pool with the tiny model (fast progress)."""
    async with _running_flow(tmp_path, model_repo) as chat_flow:
        yield chat_flow


@pytest.fixture
async def link_server(song) -> AsyncIterator[LinkServer]:
    """A local link server serving ``song`` at ``/media/clip.mp3``."""
    async with running_link_server() as server:
        server.add_media("clip.mp3", song.read_bytes())
        yield server


@pytest.fixture
async def link_flow(tmp_path, model_repo, link_server) -> AsyncIterator[ChatFlow]:
    """:func:`flow` with a started link service that may reach ``link_server``."""
    settings = LinksSettings(allowed_networks=["127.0.0.0/8"], allowed_ports=[link_server.port])
    async with LinkService(settings) as links, _running_flow(tmp_path, model_repo, links) as chat:
        yield chat


@pytest.fixture(scope="module")
def song(tmp_path_factory, clip_path, ffmpeg) -> Path:
    """6 s of real music as an MP3 (~100 KB)."""
    return excerpt(
        clip_path, tmp_path_factory.mktemp("song") / "clip.mp3", ffmpeg, 6, "-c:a", "libmp3lame"
    )
