"""A karaoke video from a :class:`~separation.video.request.VideoRequest`: the words
parsed, timed if they have no times, scaled to the render's tempo, written as ASS and
rendered over the instrumental. What the pool and the command line call.

The order matters for tempo: the vocals stem the words are aligned on is the separated
one, at the song's own tempo, so alignment comes first and :meth:`Lyrics.scaled` second
(at tempo 0.8 every time is divided by 0.8 and the video is 1.25 times as long).
"""

from __future__ import annotations

from pathlib import Path

from separation.errors import LyricsInputError
from separation.lyrics.alignment import align_lyrics
from separation.lyrics.model import Lyrics, Timing
from separation.lyrics.parse import parse_lyrics
from separation.video.ass import write_karaoke_ass
from separation.video.fonts import prepare_fonts
from separation.video.render import render_video
from separation.video.request import VideoRequest


class UntimedLyricsError(LyricsInputError):
    """Words without times where they cannot be aligned (alignment is off, or there is
    no vocals stem to align them on)."""

    kind = "untimed_lyrics"

    def __init__(self) -> None:
        super().__init__(
            "Those lyrics have no times, and I can't time them here. "
            "Send them as an .lrc file (with [mm:ss.xx] times)."
        )


def make_karaoke_video(
    video: VideoRequest,
    *,
    instrumental: Path,
    vocals: Path | None,
    tempo: float,
    duration_seconds: float,
    output: Path,
    ffmpeg: str,
    workdir: Path,
    max_bytes: int | None,
    threads: int = 1,
    cover: Path | None = None,
) -> Timing:
    """Render the karaoke video of ``video`` at ``output``; how its words were timed.

    Args:
        video: the words (LRC, enhanced LRC or plain text), titles and look.
        instrumental: the sound track, already at ``tempo`` (and in its key).
        vocals: the separated vocals at the song's own tempo, for aligning plain text.
        tempo: the render's tempo (1.0: as sung); every lyric time is divided by it.
        duration_seconds: the instrumental's length, which the video has.
        output: the MP4 to write.
        ffmpeg: the ffmpeg executable.
        workdir: a private folder for the ASS and the fonts (the caller removes it).
        max_bytes: the chat's upload limit, or None.
        threads: the cores the render may use (the CPU budget's share).
        cover: the re-encoded cover art (``extract_cover``), or None for a colour.

    Raises:
        LyricsInputError: the words cannot be used (the parser refused them, or untimed here).
        OutputTooLargeError, VideoRenderError: from the render.
    """
    song_seconds = duration_seconds * tempo  # the separated song's own length
    lyrics: Lyrics = parse_lyrics(
        video.lyrics_text, source=video.lyrics_source, duration_seconds=song_seconds
    )
    if not lyrics.is_timed:
        if not video.align or vocals is None:
            raise UntimedLyricsError()
        lyrics = align_lyrics(
            lyrics,
            vocals,
            ffmpeg=ffmpeg,
            duration_seconds=song_seconds,
            use_speech_model=video.speech_model,
        )
    lyrics = lyrics.scaled(tempo)
    fonts = prepare_fonts(workdir, font=video.look.font)
    ass = workdir / "karaoke.ass"
    write_karaoke_ass(
        lyrics, ass, look=video.look, title=video.title, artist=video.artist,
        duration_seconds=duration_seconds, font_family=fonts.family,
    )  # fmt: skip
    render_video(
        ass=ass, fonts=fonts, instrumental=instrumental, output=output, look=video.look,
        duration_seconds=duration_seconds, ffmpeg=ffmpeg, max_bytes=max_bytes,
        threads=threads, cover=cover,
    )  # fmt: skip
    return lyrics.timing
