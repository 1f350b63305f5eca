"""Karaoke videos (issue 24): asking for the words, making the video, and its refusals."""

from __future__ import annotations

from bot.chat.conversation.messages.numbers import format_wait

VIDEO_PART = "karaoke video"
"""How a video's title names it: "My Song (Karaoke video, −2 keys)"."""
VIDEO_RENDERING = "Making your karaoke video... this takes a minute or two."
ASK_FOR_LYRICS = (
    "I don't have the words of this song. Send me the lyrics as a reply: an .lrc file, or the text."
)
"""The question, sent with a "Lyrics video" button: a reply to it names the song."""
VIDEO_NEEDS_A_SONG = (
    "Send me a song first; then press \N{CLAPPER BOARD} Lyrics video under it, "
    "or reply to it with /video."
)
LYRICS_NEED_A_SONG = (
    "To make a karaoke video, send the lyrics as a reply to one of my songs "
    "(or to my question about them)."
)
VIDEOS_UNAVAILABLE = "Karaoke videos aren't available on this server."

_SOURCES = {
    "tags": "the song's tags",
    "user": "your lyrics",
    "lrclib": "LRCLIB",
}


def video_ready(change: str, source: str, *, approximate: bool) -> str:
    """The last state of a video's message, just before the video: what changed, where
    the words came from, and whether their timing is a guess."""
    what = f"Here is your karaoke video, {change}" if change else "Here is your karaoke video"
    where = _SOURCES.get(source, source)
    timing = "; the timing is approximate" if approximate else ""
    return f"{what} (words from {where}{timing}):"


def videos_used(per_hour: int, retry_after_seconds: float) -> str:
    """A video asked for beyond ``video.videos_per_hour``."""
    videos = "1 video" if per_hour == 1 else f"{per_hour} videos"
    return (
        f"That's all the videos I can make for you for now ({videos} an hour). "
        f"Try again in {format_wait(retry_after_seconds)}."
    )
