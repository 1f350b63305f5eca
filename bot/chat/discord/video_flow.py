"""What the Discord adapter asks of the chat flow for karaoke videos.

The flow makes the videos (finds the words, asks for them, renders, delivers); the
adapter only hands it what a user sent: lyrics in reply to a result, ``/video`` for the
latest song, ``/video`` with lyrics. :class:`VideoFlow` names those entry points of
:class:`~bot.chat.conversation.flow.ChatFlow` in one place, so the adapter's code and its
tests are written against one signature each.
"""

from __future__ import annotations

from typing import Protocol, cast

from bot.chat.conversation.flow import ChatFlow
from bot.chat.conversation.types import ChatUser, LyricsUpload, Replier


class VideoFlow(Protocol):
    """The chat flow's video entry points."""

    async def lyrics_reply(
        self, user: ChatUser, replier: Replier, token: str, lyrics: LyricsUpload
    ) -> None:
        """Lyrics sent for the job of control token ``token``: kept, then its video made."""
        ...

    async def video_command(self, user: ChatUser, replier: Replier, token: str | None) -> None:
        """A video of the job of ``token``; None: of the user's latest song."""
        ...

    async def lyrics_for_latest(
        self, user: ChatUser, replier: Replier, lyrics: LyricsUpload
    ) -> None:
        """Lyrics for the user's latest song (``/video lyrics:``): kept, then its video made."""
        ...


def video_flow(flow: ChatFlow) -> VideoFlow:
    """``flow`` as the video entry points it provides."""
    return cast(VideoFlow, flow)
