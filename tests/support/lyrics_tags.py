"""Songs whose tags carry lyrics, made from ffmpeg tones and tagged with mutagen, the way
taggers (Picard, foobar2000, Mp3tag) write them: ID3 USLT and SYLT, Vorbis comments,
MP4 ``©lyr``. For the tag reader's tests and for any test of a song that brings its words."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mutagen.flac import FLAC
from mutagen.id3 import ID3, SYLT, USLT, Encoding
from mutagen.mp4 import MP4
from mutagen.oggvorbis import OggVorbis

from tests.support.media import make_tone

SYLT_MILLISECONDS = 2
SYLT_MPEG_FRAMES = 1


def mp3_with_lyrics(
    path: Path,
    ffmpeg: str,
    *,
    uslt: str | None = None,
    sylt: Sequence[tuple[str, int]] | None = None,
    sylt_format: int = SYLT_MILLISECONDS,
    seconds: float = 2.0,
) -> Path:
    """An MP3 tone with an ID3 ``USLT`` frame (plain text or LRC) and/or a ``SYLT`` frame
    of ``(text, time)`` pairs (milliseconds, or MPEG frames with ``SYLT_MPEG_FRAMES``)."""
    make_tone(path, ffmpeg, seconds=seconds)
    tags = ID3(path)
    if uslt is not None:
        tags.add(USLT(encoding=Encoding.UTF8, lang="eng", desc="", text=uslt))
    if sylt is not None:
        tags.add(
            SYLT(encoding=Encoding.UTF8, lang="eng", format=sylt_format, type=1, desc="",
                 text=list(sylt))
        )  # fmt: skip
    tags.save(path)
    return path


def flac_with_comments(path: Path, ffmpeg: str, seconds: float = 2.0, **comments: str) -> Path:
    """A FLAC tone with Vorbis comments (``LYRICS=...``, ``SYNCEDLYRICS=...``)."""
    make_tone(path, ffmpeg, seconds=seconds)
    song = FLAC(path)
    for name, value in comments.items():
        song[name] = value
    song.save()
    return path


def ogg_with_comments(path: Path, ffmpeg: str, seconds: float = 2.0, **comments: str) -> Path:
    """An Ogg Vorbis tone with Vorbis comments."""
    make_tone(path, ffmpeg, seconds=seconds)
    song = OggVorbis(path)
    for name, value in comments.items():
        song[name] = value
    song.save()
    return path


def m4a_with_lyrics(path: Path, ffmpeg: str, lyrics: str, seconds: float = 2.0) -> Path:
    """An AAC tone in MP4 with the ``©lyr`` atom iTunes writes."""
    make_tone(path, ffmpeg, seconds=seconds)
    song = MP4(path)
    song["\xa9lyr"] = [lyrics]
    song.save()
    return path
