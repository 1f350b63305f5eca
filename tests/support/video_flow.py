"""The chat flow's video entry points, recorded: what the Discord adapter hands the flow.

The adapter's half of the karaoke video (which message is lyrics for which song, which
command asks for which video) is tested on its own by replacing, on one running
``ChatFlow``, its video entry points (``lyrics_reply``, ``video_command``,
``lyrics_for_latest``): each call is recorded with its user, token and lyrics, and
answered as the flow would answer it quickly, so a test can wait for it: a karaoke
video file with control buttons (sent through the adapter's own replier, as the flow
delivers one) or one line of text.
Everything else about the bot runs for real.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.chat.conversation.controls import ControlState, buttons
from bot.chat.conversation.types import ChatUser, LyricsUpload, OutgoingFile, Replier, SongUpload
from separation.audio.render_options import RenderOptions

ANSWER = "(the flow got it)"
LATEST_TOKEN = "LatestSong_1"
"""The control token the stand-in gives "the user's latest song"."""


@dataclass
class VideoCall:
    method: str
    user: ChatUser
    token: str | None
    lyrics: LyricsUpload | None = None


@dataclass
class RecordedVideoFlow:
    """Installed on ``flow`` by :func:`record_video_flow`."""

    video: Path | None = None
    """Answer each call with this file as a karaoke video; None: with :data:`ANSWER`."""
    calls: list[VideoCall] = field(default_factory=list)
    songs: list[SongUpload] = field(default_factory=list)
    """Every upload handed to ``accept_song`` (the real one runs it)."""

    async def lyrics_reply(
        self, user: ChatUser, replier: Replier, token: str, lyrics: LyricsUpload
    ) -> None:
        await self._answer(VideoCall("lyrics_reply", user, token, lyrics), replier)

    async def video_command(self, user: ChatUser, replier: Replier, token: str | None) -> None:
        await self._answer(VideoCall("video_command", user, token), replier)

    async def lyrics_for_latest(
        self, user: ChatUser, replier: Replier, lyrics: LyricsUpload
    ) -> None:
        await self._answer(VideoCall("lyrics_for_latest", user, None, lyrics), replier)

    async def _answer(self, call: VideoCall, replier: Replier) -> None:
        self.calls.append(call)
        if self.video is None:
            await replier.send_text(ANSWER)
            return
        state = ControlState(call.token or LATEST_TOKEN, RenderOptions())
        video = OutgoingFile(
            self.video,
            "clip (Karaoke).mp4",
            "clip",
            duration_seconds=5.0,
            controls=buttons(state),
            is_video=True,
            width=64,
            height=64,
        )
        await replier.send_files([video])


def record_video_flow(flow: Any, video: Path | None = None) -> RecordedVideoFlow:
    """Replace ``flow``'s video entry points with a recorder (on this object only), and
    record the songs it accepts."""
    recorder = RecordedVideoFlow(video)
    for name in ("lyrics_reply", "video_command", "lyrics_for_latest"):
        setattr(flow, name, getattr(recorder, name))
    accept_song = flow.accept_song

    async def recording_accept_song(user, conversation, replier, upload, **order):
        recorder.songs.append(upload)
        return await accept_song(user, conversation, replier, upload, **order)

    flow.accept_song = recording_accept_song
    return recorder
