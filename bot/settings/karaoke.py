"""``[lyrics]`` and ``[video]``: where the words of a song come from, and how its karaoke
video looks.

The look is checked here (sizes a phone can play, colours as ``#rrggbb``) so that the
renderer (``separation.video``) gets a valid :class:`~separation.video.request.VideoLook`
and never parses an operator's typo mid-render.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, HttpUrl, field_validator

from bot.settings.base import Section
from separation.video.request import VideoLook

_COLOUR = r"^#[0-9a-fA-F]{6}$"


class LyricsSettings(Section):
    """Where a song's words come from, in order: the song's own tags, the user, a
    synced-lyrics service; untimed words are aligned to the separated vocals."""

    from_tags: bool = True
    """Read synced or plain lyrics from the song file's tags (LYRICS, USLT, SYLT)."""
    lrclib: bool = True
    """Ask LRCLIB (lrclib.net, the free synced-lyrics service music players use) for the
    words of a song that has none. Turn it off on a host without internet access."""
    lrclib_url: HttpUrl = HttpUrl("https://lrclib.net")
    """LRCLIB's base URL; no lyrics request ever goes anywhere else."""
    lrclib_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    """The whole of one lookup (every request it makes); past it, the user is asked."""
    lrclib_max_bytes: int = Field(default=512_000, ge=10_000, le=10_000_000)
    """Largest answer read from LRCLIB; a bigger one is cut off and ignored."""
    alignment: bool = True
    """Time plain lyrics (no time tags) on the separated vocals; off: ask for an .lrc."""
    speech_model: bool = True
    """Use the offline speech model (pocketsphinx, English) for word timing where it
    applies; otherwise lines are timed on where the voice is."""


class VideoSettings(Section):
    """The karaoke video: size, frame rate, colours and font."""

    width: int = Field(default=854, ge=320, le=1920, multiple_of=2)
    """Frame width in pixels (even: H.264 with 4:2:0 colour needs it)."""
    height: int = Field(default=480, ge=240, le=1080, multiple_of=2)
    """Frame height in pixels (even)."""
    fps: int = Field(default=15, ge=5, le=30)
    """Frames per second: the fill moves smoothly at 15; more costs time and bytes."""
    background: str = Field(default="#1b2a41", pattern=_COLOUR)
    """Behind the words when the song has no cover art."""
    text_colour: str = Field(default="#ffffff", pattern=_COLOUR)
    """Words not sung yet."""
    fill_colour: str = Field(default="#ffcc00", pattern=_COLOUR)
    """Words as they are sung."""
    font: Path | None = None
    """A font file to use instead of the one the bot ships (it must cover your users'
    scripts)."""
    videos_per_hour: int = Field(default=10, ge=1)
    """Karaoke videos one user may ask for in an hour (a video costs no song from the
    quota, but minutes of CPU)."""

    @field_validator("font")
    @classmethod
    def _font_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no font file at {value}")
        return value

    def look(self) -> VideoLook:
        """The renderer's view of these settings."""
        return VideoLook(
            width=self.width,
            height=self.height,
            fps=self.fps,
            background=self.background,
            text_colour=self.text_colour,
            fill_colour=self.fill_colour,
            font="" if self.font is None else str(self.font),
        )
