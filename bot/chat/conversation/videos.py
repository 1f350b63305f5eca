"""Karaoke videos asked of a finished song: its words, the question, the video's own rate.

A video is a render of the song (``bot.chat.conversation.rerender`` renders, refuses and
delivers it like any key change), with words on screen. What is particular to it lives
here: the words come from ``bot.chat.conversation.lyrics``, and when nobody has them the
user is asked for them in one message that carries a "Lyrics video" button, so that
their reply to it names the song (the adapters read the token from the replied-to
message's buttons) and the button itself tries again. A video costs no song from the
quota, nor the daily allowance of re-rendered audio; it has its own rate,
``video.videos_per_hour`` per user, counted in memory like the renders' (admins are
exempt), and only when a video is really asked of the backend: a question costs none.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol, runtime_checkable

from bot.chat.conversation import messages
from bot.chat.conversation.controls import Button, ControlState
from bot.chat.conversation.lyrics import LyricsFinder
from bot.chat.conversation.ratelimit import RateLimiter
from bot.chat.conversation.types import ChatUser, Replier
from separation.lyrics.model import LyricsSource
from separation.video.request import VideoLook, VideoRequest
from storage.records import JobRecord

logger = logging.getLogger(__name__)


@runtime_checkable
class AsksWithButtons(Protocol):
    """A replier that can send a text with buttons under it (Telegram's inline keyboard,
    Discord's view). Where a platform cannot, the question is sent as plain text and the
    user replies to the song's own message instead."""

    async def send_text_with_buttons(self, text: str, rows: list[list[Button]]) -> Any: ...


class KaraokeVideos:
    """The words, the question and the rate of karaoke videos for one chat flow."""

    def __init__(
        self,
        *,
        finder: LyricsFinder,
        look: VideoLook,
        align: bool = True,
        limiter: RateLimiter | None = None,
        per_hour: int = 10,
    ) -> None:
        """``align``: plain words may be timed on the vocals (``lyrics.alignment``);
        ``limiter``: ``per_hour`` videos per user (``video.videos_per_hour``)."""
        self.finder = finder
        self._look = look
        self._align = align
        self._limiter = limiter
        self._per_hour = per_hour

    @staticmethod
    def per_hour_limiter(
        per_hour: int, *, clock: Callable[[], float] = time.monotonic
    ) -> RateLimiter:
        """``per_hour`` videos at once, then one more every ``60 / per_hour`` minutes."""
        return RateLimiter(requests_per_minute=per_hour / 60, burst=per_hour, clock=clock)

    @property
    def size(self) -> tuple[int, int]:
        """The width and height every video is made in."""
        return self._look.width, self._look.height

    async def plan(
        self, user: ChatUser, replier: Replier, job: JobRecord, state: ControlState
    ) -> VideoRequest | str | None:
        """The video to ask the backend for, a refusal to tell the user, or None when the
        user was asked for the words instead."""
        words = await self.finder.words_for(job)
        if words.text is None or words.source is None:
            await self.ask_for_lyrics(replier, state)
            return None
        if self._limiter is not None and not user.is_admin:
            decision = self._limiter.check(user.ref)
            if not decision.allowed:
                logger.info("videos rate limited for %s", user.ref)
                return messages.videos_used(self._per_hour, decision.retry_after_seconds)
        return VideoRequest(
            lyrics_text=words.text,
            lyrics_source=LyricsSource(words.source),
            title=words.title,
            artist=words.artist,
            look=self._look,
            align=self._align,
        )

    async def ask_for_lyrics(self, replier: Replier, state: ControlState) -> None:
        """The one question, with the button that names the song and tries again."""
        video = replace(state, video=True)
        if isinstance(replier, AsksWithButtons):
            button = Button(messages.CONTROL_VIDEO, video.encode())
            await replier.send_text_with_buttons(messages.ASK_FOR_LYRICS, [[button]])
        else:
            await replier.send_text(messages.ASK_FOR_LYRICS)
