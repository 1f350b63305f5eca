"""What a job asked for, as its record keeps it: output format and karaoke controls.

A job is delivered by whichever code runs it (the first delivery, a resume after a
restart, a re-render from its buttons); each reads the job's wishes from here, so they
all read them the same way.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from separation.audio.encode import EncodingSpec
from separation.audio.render_options import RenderOptions
from storage.records import JobRecord

logger = logging.getLogger(__name__)

CONTROLS_OPTION = "controls"
"""The job option holding the karaoke controls asked for with the song (``/karaoke key:``)."""


def render_option(controls: RenderOptions | None) -> dict[str, dict[str, Any]]:
    """The job options that record ``controls`` (none for no change)."""
    if controls is None or controls.is_identity:
        return {}
    return {
        CONTROLS_OPTION: {
            "key": controls.key, "tempo": controls.tempo, "guide_db": controls.guide_db
        }
    }  # fmt: skip


def stored_controls(job: JobRecord) -> RenderOptions:
    """The karaoke controls a job was asked with (identity when none, or unreadable)."""
    return controls_in(job.options, owner=f"job {job.id}")


def controls_in(options: Mapping[str, Any], *, owner: str) -> RenderOptions:
    """The karaoke controls recorded in ``options`` by :func:`render_option` (identity
    when none, or unreadable); ``owner`` names the record in the log."""
    stored = options.get(CONTROLS_OPTION)
    if not isinstance(stored, dict):
        return RenderOptions()
    try:
        return RenderOptions(**stored)
    except (TypeError, ValueError):
        logger.warning("%s: unreadable controls %r; delivered unchanged", owner, stored)
        return RenderOptions()


def job_encoding(job: JobRecord, default: EncodingSpec) -> EncodingSpec:
    """``default`` in the output format the job asked for (``/karaoke format:``)."""
    wanted = job.options.get("format", default.format)
    if wanted == default.format:
        return default
    return dataclasses.replace(default, format=wanted)
