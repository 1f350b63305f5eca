"""What a karaoke video is made of, as a caller asks for it (torch-free, picklable, and
plain enough to cross the distributed backend's wire as JSON)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field

from separation.lyrics.model import LyricsSource

VIDEO = "video"
"""The output name of a video render (its one file, an MP4)."""


@dataclass(frozen=True)
class VideoLook:
    """How the video looks; the operator's ``[video]`` settings."""

    width: int = 854
    height: int = 480
    fps: int = 15
    background: str = "#1b2a41"
    """The calm colour behind the words when the song has no cover art (#rrggbb)."""
    text_colour: str = "#ffffff"
    """Words not sung yet."""
    fill_colour: str = "#ffcc00"
    """Words as they are sung (the karaoke fill)."""
    font: str = ""
    """A font file; empty: the font shipped with the bot's dependencies."""


@dataclass(frozen=True)
class VideoRequest:
    """A karaoke video of a separated song: its words and its look. The song itself (key,
    tempo, guide vocal) is the ``RenderRequest`` this rides on."""

    lyrics_text: str
    """LRC, enhanced LRC or plain text, already cleaned and bounded by
    ``separation.lyrics.parse`` (parsed again where the video is made)."""
    lyrics_source: LyricsSource
    title: str
    artist: str | None = None
    look: VideoLook = field(default_factory=VideoLook)
    align: bool = True
    """Plain text may be aligned to the vocals stem; False: refuse untimed lyrics."""
    speech_model: bool = True
    """Aligning may use the offline speech model for word times (``[lyrics]
    speech_model``); False: lines are timed on where the voice is."""

    def cache_token(self) -> str:
        """Changes whenever the video's pixels would: the words, the look, the titles."""
        digest = hashlib.sha256()
        for part in (
            self.lyrics_text,
            self.lyrics_source.value,
            self.title,
            self.artist or "",
            repr(sorted(asdict(self.look).items())),
            str(self.align),
            str(self.speech_model),
        ):
            digest.update(part.encode("utf-8", "surrogatepass"))
            digest.update(b"\0")
        return digest.hexdigest()[:24]
