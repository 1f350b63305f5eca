"""A karaoke video request as JSON on the queue (issue 24), checked on the way in.

A render job's payload is data from the queue, written by a front-end of maybe another
release: the worker rebuilds the :class:`~separation.video.request.VideoRequest` field by
field and refuses anything out of shape with ``ValueError`` (the job fails; nothing
half-valid reaches the renderer). The words themselves are cleaned again where the
video is made (``separation.lyrics.parse``); here they are only bounded. The look's font
is a path: only an existing font file is accepted, so a payload cannot point the
renderer at arbitrary files.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from separation.lyrics.model import LyricsSource
from separation.video.request import VideoLook, VideoRequest

MAX_LYRICS_CHARS = 1_000_000
"""Far above any cleaned lyrics (``separation.lyrics.parse`` caps them lower)."""
MAX_TITLE_CHARS = 1_000
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
_FONT_SUFFIXES = (".ttf", ".otf", ".ttc", ".otc", ".woff", ".woff2")
_LOOK_RANGES = {"width": (16, 3840), "height": (16, 2160), "fps": (1, 60)}


def video_to_json(video: VideoRequest) -> dict[str, Any]:
    """The request as plain JSON values (the source as its string value)."""
    return {
        "lyrics_text": video.lyrics_text,
        "lyrics_source": video.lyrics_source.value,
        "title": video.title,
        "artist": video.artist,
        "look": dataclasses.asdict(video.look),
        "align": video.align,
    }


def video_from_json(raw: object) -> VideoRequest:
    """The request back from a payload.

    Raises:
        ValueError: a field is missing, of the wrong type, out of range or unknown.
    """
    if not isinstance(raw, Mapping):
        raise ValueError("a video request must be an object")
    artist = raw.get("artist")
    align = raw.get("align", True)
    if not isinstance(align, bool):
        raise ValueError("video align must be true or false")
    return VideoRequest(
        lyrics_text=_text(raw.get("lyrics_text"), "lyrics", MAX_LYRICS_CHARS),
        lyrics_source=LyricsSource(str(raw.get("lyrics_source"))),
        title=_text(raw.get("title"), "title", MAX_TITLE_CHARS),
        artist=None if artist is None else _text(artist, "artist", MAX_TITLE_CHARS),
        look=_look(raw.get("look")),
        align=align,
    )


def _text(value: object, what: str, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise ValueError(f"video {what} must be a string of at most {limit} characters")
    return value


def _look(raw: object) -> VideoLook:
    if not isinstance(raw, Mapping):
        raise ValueError("a video look must be an object")
    known = {f.name for f in dataclasses.fields(VideoLook)}
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"unknown video look fields {sorted(unknown)}")
    fields: dict[str, Any] = {}
    for name, (low, high) in _LOOK_RANGES.items():
        value = raw.get(name, getattr(VideoLook, name))
        if type(value) is not int or not low <= value <= high:
            raise ValueError(f"video {name} must be a whole number from {low} to {high}")
        fields[name] = value
    for name in ("background", "text_colour", "fill_colour"):
        colour = raw.get(name, getattr(VideoLook, name))
        if not isinstance(colour, str) or not _COLOUR.fullmatch(colour):
            raise ValueError(f"video {name} must be #rrggbb")
        fields[name] = colour
    font = raw.get("font", "")
    if not isinstance(font, str) or (font and not _is_font_file(font)):
        raise ValueError("video font must be empty or a font file on this host")
    return VideoLook(**fields, font=font)


def _is_font_file(font: str) -> bool:
    path = Path(font)
    return path.is_absolute() and path.suffix.lower() in _FONT_SUFFIXES and path.is_file()
