"""One song's order, typed: what the user asked for, from the command to the last re-render.

Made once where the user's wishes are parsed (the adapters' commands, or a record read
back), then carried: the flow reserves the job with it (``storage.order.StoredOrder`` is
its stored form), submits it to either backend, delivers it, and a restart, another
front-end or a button pressed later reads it back from the job, typed, instead of
unpacking a dict and normalising the stem mode again on the way. The upload's facts (its
SHA-256, taken while it was saved, in the job's record; its header and the names read
from it in :class:`ReceivedSong`) travel beside it, so nothing downstream reads the file
to learn them again.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from separation.audio.encode import EncodingSpec, OutputFormat, StemMode
from separation.audio.ffmpeg import ProbeResult
from separation.audio.render_options import RenderOptions
from separation.errors import InvalidRenderOptionError
from storage.order import StoredControls, StoredOrder
from storage.records import JobRecord

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SongOrder:
    """What the user asked for with one song."""

    stems: StemMode = "two"
    output_format: OutputFormat | None = None
    """None: the server's default format."""
    controls: RenderOptions = field(default_factory=RenderOptions)
    """The karaoke controls the song is sent with (``/karaoke key:-2``); identity: none."""
    progress_message: str | None = None
    """The chat message that shows the song's progress, once known: a restart goes on in it."""

    def encoding(self, default: EncodingSpec) -> EncodingSpec:
        """``default`` in the output format asked for."""
        if self.output_format is None or self.output_format == default.format:
            return default
        return dataclasses.replace(default, format=self.output_format)

    def stored(self, separation: Mapping[str, float] | None = None) -> StoredOrder:
        """The form the job keeps (``separation``: the model's settings, for the record)."""
        controls = self.controls
        return StoredOrder(
            stems=self.stems,
            output_format=self.output_format,
            controls=None
            if controls.is_identity
            else StoredControls(controls.key, controls.tempo, controls.guide_db),
            progress_message=self.progress_message,
            separation=dict(separation or {}),
        )

    @classmethod
    def from_stored(cls, stored: StoredOrder, *, owner: str) -> SongOrder:
        """The order a record keeps. Controls outside today's ranges (a record older than
        a narrowed range) are delivered unchanged rather than failing the song; ``owner``
        names the record in the log."""
        controls = RenderOptions()
        if (kept := stored.controls) is not None:
            try:
                controls = RenderOptions(kept.key, kept.tempo, kept.guide_db)
            except InvalidRenderOptionError:
                logger.warning("%s: unreadable controls %r; delivered unchanged", owner, kept)
        return cls(
            stems=stored.stems,
            output_format=stored.output_format,
            controls=controls,
            progress_message=stored.progress_message,
        )

    @classmethod
    def of_job(cls, job: JobRecord) -> SongOrder:
        """What ``job`` was asked with (a resume, a takeover, a re-render)."""
        return cls.from_stored(job.order, owner=f"job {job.id}")


@dataclass(frozen=True)
class ReceivedSong:
    """What the edge learnt from reading a new upload's header, once: the backend decodes
    with ``probe`` instead of probing again, and the files are named after ``title`` and
    ``performer``. A job resumed from its record has none (its own tags name it)."""

    probe: ProbeResult
    title: str
    performer: str | None
