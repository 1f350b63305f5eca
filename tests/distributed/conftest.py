"""A small fleet on one machine: real PostgreSQL, real worker processes, tiny models.

Each test gets its own queue name (the session's fresh database is shared), its own blob
folder and its own worker processes, started with ``karaoke-bot worker`` exactly as an
operator would, and killed at the end. Front-ends run in the test's event loop as
``DistributedBackend`` objects built from the same kind of config file (the fleet itself
is :class:`tests.support.fleet.Fleet`).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.chat.conversation.flow import ChatFlow
from bot.process.wiring import flow_config
from storage.db import open_database
from storage.migrate import upgrade
from storage.store import Store
from tests.support.fleet import Fleet, FrontEnd
from tests.support.media import excerpt


@pytest.fixture(scope="session")
def fleet_database(postgres_url: str) -> str:
    """The session's fresh database, migrated once (queue schema and run ledger included)."""

    async def migrate() -> None:
        database = open_database(postgres_url)
        try:
            await upgrade(database)
        finally:
            await database.close()

    asyncio.run(migrate())
    return postgres_url


@pytest.fixture
async def fleet(tmp_path: Path, fleet_database: str, model_repo: Path) -> AsyncIterator[Fleet]:
    fleet = Fleet(root=tmp_path, database_url=fleet_database, model_repo=model_repo)
    try:
        yield fleet
    finally:
        for backend in fleet.frontends:
            await backend.shutdown(timeout=0)
        fleet.stop()


@pytest.fixture
def song(tmp_path: Path, shared_music: Path, ffmpeg: str) -> Callable[[float, str], Path]:
    """``song(seconds, name)``: an excerpt of real music (a 2:13 song) as an MP3 upload;
    different names with different lengths give different songs."""

    def make(seconds: float, name: str = "song") -> Path:
        target = tmp_path / "songs" / f"{name}.mp3"
        target.parent.mkdir(exist_ok=True)
        return excerpt(shared_music / "lets-go-fishin.ogg", target, ffmpeg, seconds)

    return make


@pytest.fixture
async def front_ends(fleet: Fleet) -> AsyncIterator[Callable[[str], object]]:
    """``await make(name)``: a front-end (flow + backend + store) with its own id."""
    made: list[FrontEnd] = []

    async def make(name: str) -> FrontEnd:
        settings = fleet.settings(name, "[telegram]\nenabled = false\n")
        backend = await fleet.frontend(name)
        store = await Store.open(settings.database_url, settings.general.data_dir)
        config = dataclasses.replace(
            flow_config(settings),
            progress_interval_seconds=0.05,
            frontend_id=f"host-{name}",
            delivery_lease_seconds=1.5,
        )
        made.append(FrontEnd(ChatFlow(store=store, backend=backend, config=config), backend, store))
        return made[-1]

    try:
        yield make
    finally:
        for front in made:
            await front.store.close()
