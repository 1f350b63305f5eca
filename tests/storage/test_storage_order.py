"""A job's order is kept typed and validated (issue 22): refused when it cannot be right,
read back as written, and existing rows' untyped options converted by revision 0007."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from storage.db import Database
from storage.errors import InvalidStoredOrderError
from storage.migrate import current_revision, head_revision
from storage.order import StoredControls, StoredOrder
from tests.support.store import Backend, run_alembic

FULL = StoredOrder(
    stems="four",
    output_format="flac",
    controls=StoredControls(key=-2, tempo=0.9, guide_db=-12.0),
    progress_message="77",
    separation={"shifts": 1, "overlap": 0.25},
)


def test_an_order_round_trips_through_its_json_form():
    assert StoredOrder.from_json(FULL.to_json()) == FULL
    assert StoredOrder.from_json(json.loads(json.dumps(StoredOrder().to_json()))) == StoredOrder()


@pytest.mark.parametrize(
    "change",
    [
        {"stems": "three"},
        {"stems": None},
        {"format": "ogg"},
        {"controls": {"key": "-2"}},
        {"controls": {"key": 1.5}},
        {"controls": {"key": True}},
        {"controls": {"tempo": float("nan")}},
        {"controls": {"pitch": 2}},
        {"controls": "k-2"},
        {"progress_message": 77},
        {"progress_message": ""},
        {"progress_message": "x" * 129},
        {"separation": {"shifts": "one"}},
        {"separation": [1, 2]},
        {"version": 2},
        {"version": None},
        {"shifts": 1},  # the old flat form is not version 1
    ],
)
def test_a_stored_order_that_cannot_be_right_is_refused(change: dict[str, Any]):
    with pytest.raises(InvalidStoredOrderError):
        StoredOrder.from_json({**FULL.to_json(), **change})


@pytest.mark.parametrize("raw", [None, [], "two", 2])
def test_an_order_is_an_object(raw: object):
    with pytest.raises(InvalidStoredOrderError):
        StoredOrder.from_json(raw)


def test_an_order_is_validated_when_made():
    with pytest.raises(InvalidStoredOrderError):
        StoredOrder(stems="three")  # type: ignore[arg-type]
    with pytest.raises(InvalidStoredOrderError):
        StoredOrder(output_format="ogg")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("legacy", "expected"),
    [
        (
            {"shifts": 1, "overlap": 0.25, "stems": "four", "format": "flac",
             "progress_message": "5", "controls": {"key": -2, "tempo": 0.9, "guide_db": None}},
            StoredOrder(
                "four", "flac", StoredControls(-2, 0.9), "5", {"shifts": 1, "overlap": 0.25}
            ),
        ),
        ({}, StoredOrder()),
        ({"stems": "FOUR", "format": "ogg"}, StoredOrder()),  # what every old reader did
        ({"stems": "two", "controls": {"key": "x"}}, StoredOrder()),
        ({"stems": "two", "controls": {"key": -2}}, StoredOrder(controls=StoredControls(-2))),
        ({"title_hint": "Song", "progress_message": 12}, StoredOrder(progress_message="12")),
    ],
)  # fmt: skip
def test_old_options_are_read_once_as_every_old_reader_read_them(legacy, expected):
    assert StoredOrder.from_legacy(legacy) == expected


async def test_the_order_is_kept_with_the_job(store, make_limits, make_request):
    user = await store.users.upsert("telegram", "1", "Ann")
    job = await store.jobs.reserve(user, replace(make_request(), order=FULL), make_limits())
    assert job.order == FULL
    assert (await store.jobs.get(job.id)).order == FULL


async def test_a_row_changed_outside_the_bot_raises_instead_of_being_guessed(
    backend: Backend,
    data_dir: Path,
    database: Database,
    make_limits,
    make_request,
):
    store = await backend.open_store(data_dir)
    try:
        user = await store.users.upsert("telegram", "1", "Ann")
        job = await store.jobs.reserve(user, make_request(), make_limits())
        async with database.write() as session:
            bad = json.dumps({**StoredOrder().to_json(), "stems": "six"})
            await session.execute(
                text("UPDATE jobs SET options = :bad WHERE id = :id"), {"bad": bad, "id": job.id}
            )
        with pytest.raises(InvalidStoredOrderError):
            await store.jobs.get(job.id)
    finally:
        await store.close()


_OLD_ROWS: list[tuple[dict[str, Any], StoredOrder]] = [
    (
        {"shifts": 1, "overlap": 0.25, "stems": "two", "format": "mp3"},
        StoredOrder("two", "mp3", separation={"shifts": 1, "overlap": 0.25}),
    ),
    (
        {"shifts": 0, "stems": "four", "format": "opus", "progress_message": "41",
         "controls": {"key": 3, "tempo": 1.1, "guide_db": -12.0}},
        StoredOrder("four", "opus", StoredControls(3, 1.1, -12.0), "41", {"shifts": 0}),
    ),
    ({"stems": "bogus", "format": "ogg", "controls": "k-2"}, StoredOrder()),
    ({}, StoredOrder()),
]  # fmt: skip


async def test_the_migration_turns_old_options_into_typed_orders_and_back(
    backend: Backend,
    data_dir: Path,
    database: Database,
    make_limits,
    make_request,
):
    store = await backend.open_store(data_dir)
    try:
        user = await store.users.upsert("telegram", "1", "Ann")
        jobs = [await store.jobs.reserve(user, make_request(), make_limits()) for _ in _OLD_ROWS]
    finally:
        await store.close()
    await run_alembic(database, "downgrade", "0006")  # the revision before typed orders
    async with database.write() as session:
        for job, (options, _) in zip(jobs, _OLD_ROWS, strict=True):
            await session.execute(
                text("UPDATE jobs SET options = :options WHERE id = :id"),
                {"options": json.dumps(options), "id": job.id},
            )

    await run_alembic(database, "upgrade", "head")
    assert await current_revision(database) == head_revision()
    store = await backend.open_store(data_dir)
    try:
        orders = [(await store.jobs.get(job.id)).order for job in jobs]
    finally:
        await store.close()
    assert orders == [expected for _, expected in _OLD_ROWS]

    await run_alembic(database, "downgrade", "0006")
    async with database.read() as session:
        rows = (await session.execute(text("SELECT options FROM jobs ORDER BY id"))).scalars()
        legacy = [json.loads(row) if isinstance(row, str) else row for row in rows]
    assert legacy[0] == _OLD_ROWS[0][0]
    assert legacy[1] == _OLD_ROWS[1][0]
    assert legacy[2] == legacy[3] == {"stems": "two"}
