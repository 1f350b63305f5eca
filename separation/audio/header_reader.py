"""The child process that reads an upload's header with PyAV and prints it as JSON.

Run only by ``separation.audio.probe``, as ``python -P header_reader.py URL OPTIONS``, under
the sandbox's limits (``separation.audio.sandbox``): a hostile file is parsed in a small
process that may use bounded memory, CPU time and wall time, never in the bot's own
process. It is standalone: it imports nothing of this project (only the standard library
and PyAV), so the code that runs is this file whatever is installed.

The duration, codec, sample rate and channels come from libavformat's structures and
tags travel as JSON strings, which no tag text can break out of (``separation.audio.probe``
says why that matters). The output is bounded whatever the file holds: at most
:data:`MAX_TAGS` tags, names and values cut to :data:`MAX_TAG_NAME_CHARS` and
:data:`MAX_TAG_VALUE_CHARS`, all of it under :data:`TAGS_BUDGET_BYTES`; control and
bidi characters are dropped, as tags are a stranger's text.

The same whitelists as every ffmpeg run on an upload apply (``file`` protocol only, the
sandbox's demuxers, audio decoders only, so an attached picture is never decoded): the
parent passes them in as JSON (``separation.audio.sandbox.input_whitelists``), so this file
holds no second copy of them.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

MAX_TAGS = 32
"""Tags kept (titles and credits need a handful; 10 000 TXXX frames are not read out)."""
MAX_TAG_NAME_CHARS = 64
MAX_TAG_VALUE_CHARS = 1024
"""Long enough for any title; embedded lyrics and descriptions are cut here."""
TAGS_BUDGET_BYTES = 16 * 1024
"""All tags together, as JSON: the whole output stays far below what the sandbox keeps."""
PREFERRED_TAGS = ("title", "artist", "album_artist", "album", "performer", "composer")
"""Kept first, wherever the file put them (a file may bury its title after 10 000 tags)."""

NO_PYAV_EXIT = 3
"""The exit status when PyAV is not installed: the server's fault, not the upload's."""
OUT_OF_MEMORY = "Cannot allocate memory"
"""What this child writes to stderr when its memory limit stopped it, as ffmpeg does."""
_ESTIMATE_WARNING = "Estimating duration from bitrate, this may be inaccurate"
_KEPT_CONTROLS = frozenset("\n\t")


def clean_text(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, control and format characters but newline
    and tab dropped (tags are a stranger's text: they reach titles, logs and terminals)."""
    return "".join(c for c in text[:limit] if c in _KEPT_CONTROLS or not _is_control(c))


def _is_control(character: str) -> bool:
    # Cc: C0/C1 controls (terminal escapes, NUL); Cf: bidi overrides, zero-width marks.
    return unicodedata.category(character) in ("Cc", "Cf")


def bounded_tags(sources: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """The tags of ``sources`` (first name wins), preferred names first, within the bounds.

    Names are lower-cased (what callers look up: "title", "artist") and on one line.
    """
    merged: dict[str, str] = {}
    for tags in sources:
        for name, value in tags.items():
            key = " ".join(clean_text(name, MAX_TAG_NAME_CHARS).split()).lower()
            if key and key not in merged:
                merged[key] = value
    order = [key for key in PREFERRED_TAGS if key in merged]
    order += [key for key in merged if key not in PREFERRED_TAGS]
    kept: dict[str, str] = {}
    spent = 0
    for key in order:
        value = clean_text(merged[key], MAX_TAG_VALUE_CHARS).strip()
        cost = len(json.dumps(key)) + len(json.dumps(value)) + 2
        if len(kept) == MAX_TAGS or spent + cost > TAGS_BUDGET_BYTES:
            break
        kept[key] = value
        spent += cost
    return kept


def read_header(url: str, options: dict[str, str]) -> dict[str, Any]:
    """What the container says about ``url``, as a JSON-ready dict (see ``separation.audio.probe``).

    ``options`` are libavformat's options for the input (the sandbox's whitelists).
    """
    import av
    import av.logging

    av.logging.set_level(av.logging.WARNING)
    with av.logging.Capture() as logged:
        try:
            container = av.open(url, container_options=options, metadata_errors="replace")
        except MemoryError:
            raise  # PyAV's ENOMEM is also an FFmpegError: the limit's doing, not the file's
        except (av.FFmpegError, OSError, ValueError) as exc:
            # The sandbox's own refusal ("Format not on whitelist") says most.
            whitelist = [message for _, _, message in logged if "whitelist" in message]
            return {"opened": False, "refusal": clean_text((whitelist or [str(exc)])[0], 300)}
        finally:
            # Nothing more is logged: stderr is the parent's to read (out of memory).
            av.logging.set_level(None)
    with container:
        audio_streams = container.streams.audio
        audio: dict[str, Any] | None = None
        sources = [container.metadata]
        if audio_streams:
            first = audio_streams[0]
            context = first.codec_context
            audio = {
                "codec": context.codec.canonical_name if context is not None else None,
                "sample_rate": (context.sample_rate or None) if context is not None else None,
                "channels": (context.channels or None) if context is not None else None,
            }
            sources.append(first.metadata)  # Ogg keeps a song's tags on its stream
        return {
            "opened": True,
            "format": container.format.name,
            "duration_us": container.duration,
            "duration_is_estimate": any(
                message.strip() == _ESTIMATE_WARNING for _, _, message in logged
            ),
            "audio": audio,
            "tags": bounded_tags(sources),
            # Cover art is a picture stream (never decoded here): the pool reads it only
            # from songs that have one (``separation.pool.song_extras``).
            "has_picture": bool(container.streams.video),
        }


def main(arguments: list[str]) -> int:
    """``header_reader.py URL OPTIONS_JSON``: print the header as one line of JSON."""
    url, options = arguments
    try:
        header = read_header(url, json.loads(options))
    except ModuleNotFoundError as exc:
        print(f"PyAV is not installed: {exc}", file=sys.stderr)
        return NO_PYAV_EXIT
    except (MemoryError, ImportError) as exc:
        # An ImportError here is the dynamic loader failing to map PyAV's libraries
        # under the address-space limit ("failed to map segment").
        print(f"{OUT_OF_MEMORY}: {type(exc).__name__} {exc}", file=sys.stderr)
        return 1
    print(json.dumps(header))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
