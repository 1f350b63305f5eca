"""Each job's ``options`` becomes its typed song order (``storage.order``, version 1).

Before, ``jobs.options`` was an untyped dict (``{"shifts": 1, "overlap": 0.25, "stems":
"two", "format": "mp3", "controls": {...}, "progress_message": "5"}``) that each reader
normalised on its own. Every row is rewritten in the one validated form; what the old
readers made of a value is what the row now says (an unknown stem mode is two stems, an
unknown format the server's default, unreadable controls none), read by
``StoredOrder.from_legacy`` — the one function that knows the old form, kept for song
intake records, which still hold it. Downgrading writes the old flat form back.

Only the JSON values change, so no batch mode (see 0003 for why that matters on SQLite).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

from storage.order import StoredOrder

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

_JOBS = sa.table("jobs", sa.column("id", sa.Integer), sa.column("options", sa.JSON))


def _rewrite(convert: Any) -> None:
    """Every job's options through ``convert`` (old dict -> new dict)."""
    bind = op.get_bind()
    for job_id, options in bind.execute(sa.select(_JOBS.c.id, _JOBS.c.options)).all():
        raw = json.loads(options) if isinstance(options, str) else options
        bind.execute(_JOBS.update().where(_JOBS.c.id == job_id).values(options=convert(raw or {})))


def _to_order(options: dict[str, Any]) -> dict[str, Any]:
    if options.get("version") is not None:  # written by this revision's code already
        return StoredOrder.from_json(options).to_json()
    return StoredOrder.from_legacy(options).to_json()


def _to_legacy(options: dict[str, Any]) -> dict[str, Any]:
    order = StoredOrder.from_json(options)
    legacy: dict[str, Any] = {**order.separation, "stems": order.stems}
    if order.output_format is not None:
        legacy["format"] = order.output_format
    if order.controls is not None:
        controls = order.controls
        legacy["controls"] = {
            "key": controls.key, "tempo": controls.tempo, "guide_db": controls.guide_db
        }  # fmt: skip
    if order.progress_message is not None:
        legacy["progress_message"] = order.progress_message
    return legacy


def upgrade() -> None:
    _rewrite(_to_order)


def downgrade() -> None:
    _rewrite(_to_legacy)
