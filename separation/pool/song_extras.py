"""A song's extras, read from its upload while it is separated: the words in its tags
and its cover art (``separation.cache.extras`` says where they are kept and why).

The upload is hostile, and the extras are a nicety: each reader is the hardened one
made for it (``separation.lyrics.tags`` reads tags with mutagen in a sandboxed child,
``separation.video.cover`` re-encodes the picture through the sandboxed ffmpeg with
size limits), and any failure of either is logged and yields nothing, never a failed
song. They run beside the model step, so the song waits for neither. Both are cheap to
import (about 11 ms beside the pool's second; mutagen is loaded only in the child).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

from separation.cache.extras import COVER, MAX_TAG_LYRICS_CHARS
from separation.cpu_budget import CpuBudget
from separation.lyrics.tags import read_lyrics_tags
from separation.model.offload import run_blocking
from separation.video.cover import extract_cover

logger = logging.getLogger(__name__)

COVER_STEM = f"{COVER}.jpg"
"""The file name the cover is written to inside the entry's staging folder."""


@dataclass(frozen=True)
class ExtrasPlan:
    """What to read from each upload (the operator's ``[lyrics] from_tags`` and whether
    the pool keeps stems, which the cover goes with: plain values, not the settings)."""

    tag_lyrics: bool = True
    cover: bool = True


@dataclass(frozen=True)
class SongExtras:
    tag_lyrics: str | None = None
    cover: Path | None = None
    """A file inside the folder :func:`read_song_extras` was given."""

    def stems_with_cover(self, stems: dict[str, Path] | None) -> dict[str, Path] | None:
        """The entry's stems with the cover kept among them (only where stems are kept:
        a cover without stems could never be rendered from)."""
        if not stems or self.cover is None:
            return stems
        return {**stems, COVER: self.cover}


def read_tag_lyrics(upload: Path) -> str | None:
    """The words in ``upload``'s tags, cleaned and bounded, or None (never raises)."""
    try:
        text = read_lyrics_tags(upload)
    except Exception:  # a nicety: the song is separated without its words
        logger.warning("reading the lyrics tags of %s failed", upload.name, exc_info=True)
        return None
    if text is None or not text.strip():
        return None
    if len(text) > MAX_TAG_LYRICS_CHARS:
        logger.warning("lyrics tags of %s: %d characters, not kept", upload.name, len(text))
        return None
    return text


def read_cover(upload: Path, folder: Path, *, ffmpeg: str) -> Path | None:
    """``upload``'s cover art re-encoded into ``folder``, or None (never raises)."""
    try:
        cover = extract_cover(upload, folder / COVER_STEM, ffmpeg=ffmpeg)
    except Exception:  # a nicety: the video gets the calm colour instead
        logger.warning("extracting the cover of %s failed", upload.name, exc_info=True)
        (folder / COVER_STEM).unlink(missing_ok=True)
        return None
    if cover is not None and cover.parent != folder:  # the entry can only keep its own files
        logger.warning("the cover of %s was written outside its entry", upload.name)
        return None
    return cover


async def read_song_extras(
    upload: Path, folder: Path, *, plan: ExtrasPlan, ffmpeg: str, cpu: CpuBudget | None
) -> SongExtras:
    """What ``plan`` asks for from ``upload``; the cover is written into ``folder`` (the
    entry's staging folder). The cover's ffmpeg holds one of ``cpu``'s audio slots like
    every ffmpeg of the pool."""
    lyrics_task = (
        asyncio.ensure_future(run_blocking(None, read_tag_lyrics, upload))
        if plan.tag_lyrics
        else None
    )
    slot = cpu.audio(1) if cpu is not None else contextlib.nullcontext()
    try:
        cover = None
        if plan.cover:
            async with slot:
                cover = await run_blocking(None, read_cover, upload, folder, ffmpeg=ffmpeg)
        tag_lyrics = await lyrics_task if lyrics_task is not None else None
    finally:
        if lyrics_task is not None and not lyrics_task.done():
            lyrics_task.cancel()
            await asyncio.gather(lyrics_task, return_exceptions=True)
    return SongExtras(tag_lyrics=tag_lyrics, cover=cover)
