"""What a song's cache entry keeps besides its outputs and stems: its cover art and the
words in its tags (issue 24), and how the rest of the code tells them from the stems.

Both are read once, when the song is separated (``separation.pool.song_extras``), from
the upload itself; later renders (a karaoke video, a key change) only have the cache
entry, and a distributed worker only the shared cache. So the cover is kept *with the
stems*: it is evicted with them, linked into identity renders with them, and uploaded
to and copied back from the blob store with them. It is never a stem, though: every
mixer is given :func:`audio_stems`, never ``entry.stems`` itself, or a four-stem
instrumental (the sum of every non-vocal stem) would try to mix a JPEG.

The words are small text, so they live in the entry's metadata under
:data:`TAG_LYRICS` (bounded by :data:`MAX_TAG_LYRICS_CHARS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

COVER = "cover"
"""The name of the cover art among an entry's stems (a still image, not audio)."""
TAG_LYRICS = "tag_lyrics"
"""Metadata key: the words the song's tags carry (``JobResult.tag_lyrics``)."""
LYRICS_TIMING = "lyrics_timing"
"""Metadata key of a video render: its ``Timing`` (``JobResult.lyrics_timing``)."""
MAX_TAG_LYRICS_CHARS = 200_000
"""Words longer than this are not kept: a manifest is read on every cache hit, and no
song's lyrics come near it (a long song's LRC is ~5 000 characters)."""


def audio_stems(stems: Mapping[str, Path]) -> dict[str, Path]:
    """The stems a mixer may sum: every kept file except the cover."""
    return {name: path for name, path in stems.items() if name != COVER}


def kept_cover(stems: Mapping[str, Path]) -> Path | None:
    """The song's cover art among its kept stems, if it has one."""
    return stems.get(COVER)


def tag_lyrics_of(metadata: Mapping[str, Any]) -> str | None:
    """The tag lyrics an entry's metadata (or a shared manifest) carries, if they are a
    string within :data:`MAX_TAG_LYRICS_CHARS` (a manifest is data from disk)."""
    text = metadata.get(TAG_LYRICS)
    if isinstance(text, str) and 0 < len(text) <= MAX_TAG_LYRICS_CHARS:
        return text
    return None
