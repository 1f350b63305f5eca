"""A job's song order as the database keeps it: stems, format, controls, where it shows.

What the user asked for with a song travels typed through the bot (``bot.chat.conversation.order``)
and is kept with its job so that a restart, another front-end or a button pressed days
later delivers it the same way. It used to be an untyped dict that each reader unpacked
and normalised on its own; now it is this frozen record, validated when it is written
and again when it is read (a row changed by hand or by an old bug raises
:class:`~storage.errors.InvalidStoredOrderError`, not a guess). ``storage`` imports
neither ``bot`` nor ``separation``, so the values are plain here: the format names and
the control ranges are checked where they are defined (``separation.audio``) when the
bot turns this record into its own types.

The JSON form (the ``jobs.options`` column since revision 0007) is
``{"version": 1, "stems": "two"|"four", "format": "mp3"|...|null,
"controls": {"key": int, "tempo": float, "guide_db": float|null}|null,
"progress_message": str|null, "separation": {"shifts": int, "overlap": float, ...}}``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeGuard, get_args

from storage.errors import InvalidStoredOrderError

StoredStems = Literal["two", "four"]
STORED_STEMS: tuple[str, ...] = get_args(StoredStems)
StoredFormat = Literal["mp3", "opus", "flac", "wav"]
"""The output formats a job may ask for (``separation.audio.encode.OutputFormat``; a test
keeps the two lists equal)."""
STORED_FORMATS: tuple[str, ...] = get_args(StoredFormat)

ORDER_VERSION = 1
MAX_PROGRESS_MESSAGE_LENGTH = 128
_KEYS = frozenset({"version", "stems", "format", "controls", "progress_message", "separation"})
_CONTROL_KEYS = frozenset({"key", "tempo", "guide_db"})


def is_stored_stems(value: object) -> TypeGuard[StoredStems]:
    return value in STORED_STEMS


def is_stored_format(value: object) -> TypeGuard[StoredFormat]:
    return value in STORED_FORMATS


@dataclass(frozen=True)
class StoredControls:
    """The karaoke controls a song was sent with (``/karaoke key:-2``), as numbers."""

    key: int = 0
    tempo: float = 1.0
    guide_db: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.key, bool) or not isinstance(self.key, int):
            raise InvalidStoredOrderError(f"controls.key must be a whole number, not {self.key!r}")
        _finite("controls.tempo", self.tempo)
        if self.guide_db is not None:
            _finite("controls.guide_db", self.guide_db)


@dataclass(frozen=True)
class StoredOrder:
    """One job's order. Validated on construction, so an instance is always writable.

    Raises:
        InvalidStoredOrderError: a field has a value no job can have (naming which).
    """

    stems: StoredStems = "two"
    output_format: StoredFormat | None = None
    """None: the server's default format."""
    controls: StoredControls | None = None
    """None: delivered as separated."""
    progress_message: str | None = None
    """The id of the chat message that shows the song's progress, so that a resumed job
    goes on in it instead of leaving it at "37%"."""
    separation: Mapping[str, float] = field(default_factory=dict)
    """The model's settings when it was asked (``shifts``, ``overlap``): for the record."""

    def __post_init__(self) -> None:
        if not is_stored_stems(self.stems):
            raise InvalidStoredOrderError(f"stems must be one of {STORED_STEMS}")
        if self.output_format is not None and not is_stored_format(self.output_format):
            raise InvalidStoredOrderError(f"format must be one of {STORED_FORMATS} or null")
        if self.controls is not None and not isinstance(self.controls, StoredControls):
            raise InvalidStoredOrderError("controls must be StoredControls or null")
        message = self.progress_message
        if message is not None and (
            not isinstance(message, str) or not 0 < len(message) <= MAX_PROGRESS_MESSAGE_LENGTH
        ):
            raise InvalidStoredOrderError("progress_message must be a short string or null")
        for name, value in self.separation.items():
            if not isinstance(name, str):
                raise InvalidStoredOrderError("separation settings must be named by strings")
            _finite(f"separation.{name}", value)

    def to_json(self) -> dict[str, Any]:
        """The column's value (see the module docstring)."""
        controls = self.controls
        return {
            "version": ORDER_VERSION,
            "stems": self.stems,
            "format": self.output_format,
            "controls": None
            if controls is None
            else {"key": controls.key, "tempo": controls.tempo, "guide_db": controls.guide_db},
            "progress_message": self.progress_message,
            "separation": dict(self.separation),
        }

    @classmethod
    def from_json(cls, raw: object) -> StoredOrder:
        """The order a column holds, checked key by key.

        Raises:
            InvalidStoredOrderError: not version 1 of the form, an unknown key, a value
                of the wrong type or out of range.
        """
        if not isinstance(raw, Mapping):
            raise InvalidStoredOrderError(f"an order is a JSON object, not {type(raw).__name__}")
        if raw.get("version") != ORDER_VERSION:
            raise InvalidStoredOrderError(f"unknown order version {raw.get('version')!r}")
        if unknown := set(raw) - _KEYS:
            raise InvalidStoredOrderError(f"unknown order keys {sorted(unknown)}")
        separation = raw.get("separation") or {}
        if not isinstance(separation, Mapping):
            raise InvalidStoredOrderError("separation must be an object")
        return cls(
            stems=raw.get("stems"),  # type: ignore[arg-type]  # checked by __post_init__
            output_format=raw.get("format"),
            controls=_controls_from_json(raw.get("controls")),
            progress_message=raw.get("progress_message"),
            separation=dict(separation),
        )

    @classmethod
    def from_legacy(cls, options: Mapping[str, Any]) -> StoredOrder:
        """An order from the untyped options jobs kept before revision 0007 (and that song
        intake records still keep beside their display hints): the reading every old
        reader did, once — any stem mode but ``"four"`` is two, an unknown format is the
        server's default, unreadable controls are none, other keys are model settings.
        """
        stems = options.get("stems")
        output_format = options.get("format")
        message = options.get("progress_message")
        try:
            controls = _controls_from_json(options.get("controls"))
        except InvalidStoredOrderError:
            controls = None
        separation = {
            name: float(value) if isinstance(value, float) else value
            for name, value in options.items()
            if name not in _KEYS
            and isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
        }
        return cls(
            stems="four" if stems == "four" else "two",
            output_format=output_format if is_stored_format(output_format) else None,
            controls=controls,
            progress_message=str(message)[:MAX_PROGRESS_MESSAGE_LENGTH] or None
            if message is not None
            else None,
            separation=separation,
        )


def _controls_from_json(raw: object) -> StoredControls | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or set(raw) - _CONTROL_KEYS:
        raise InvalidStoredOrderError(f"controls must be an object of {sorted(_CONTROL_KEYS)}")
    try:
        return StoredControls(**raw)
    except TypeError as exc:
        raise InvalidStoredOrderError(f"controls: {exc}") from None


def _finite(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidStoredOrderError(f"{name} must be a finite number, not {value!r}")
