"""Karaoke-control presses: hostile data is refused, "Changing it..." is shown at once and
edited into the result or the refusal (busy, daily allowance), cache hits cost nothing."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from bot.chat.conversation import messages
from bot.chat.conversation.controls import MAX_ENCODED_LENGTH, BadControlError, ControlState
from bot.chat.conversation.flow import ChatFlow
from bot.chat.conversation.render_allowance import RenderAllowance
from bot.chat.conversation.rerender import Rerenderer
from bot.chat.conversation.types import OutgoingFile
from separation.audio.encode import EncodingSpec
from separation.audio.render_options import RenderOptions
from separation.errors import RendersBusyError, RenderUnavailableError
from separation.jobs import JobResult, RenderRequest
from separation.pool import SeparationPool
from storage.records import new_control_token
from tests.support.chat import CHAT, USER, RecordingReplier, upload_of

TOKEN = "Xa3_9Qe-0bLk"
"""Of the form ``storage.records.new_control_token`` makes."""
HOSTILE = [
    "",
    "kc",
    f"kc:{TOKEN}:0:100",  # a field short
    f"kc:{TOKEN}:0:100:-:extra",
    f"xx:{TOKEN}:0:100:-",  # not ours
    "kc:17:0:100:-",  # a button from before control tokens: a job id
    "kc:9223372036854775808:0:100:-",  # 2**63: was an ERROR from SQLite, no answer
    "kc:-5:0:100:-",
    "kc:Xa3_9Qe-0bL:0:100:-",  # a token a character short
    "kc:Xa3_9Qe-0bL!:0:100:-",  # not URL-safe base64
    f"kc:{TOKEN}:7:100:-",  # key out of range
    f"kc:{TOKEN}:0:40:-",  # tempo out of range
    f"kc:{TOKEN}:0:100:-3",  # guide out of range
    f"kc:{TOKEN}:0:100:nan",
    f"kc:{TOKEN}:one:100:-",
    f"kc:{TOKEN}:0:1_00:-",
    f"kc:{TOKEN}:00000000000000000000001:100:-",
    f"kc:{TOKEN}:0:100:-" + "0" * 100,  # longer than any platform allows
    f"kc:{TOKEN}:0:1e2:-",
]


class _NoRenders:
    """A backend without ``render`` (the distributed one, for now)."""


class _MustNotRender:
    async def render(self, request: RenderRequest) -> JobResult:
        raise AssertionError("hostile control data reached the backend")


def _rerenderer(backend: object) -> Rerenderer:
    return Rerenderer(
        store=cast(Any, None),  # never reached by these cases
        backend=cast(Any, backend),
        encoding=EncodingSpec(),
        min_mp3_bitrate=96,
    )


@pytest.mark.parametrize("data", HOSTILE)
def test_control_data_we_did_not_make_is_refused(data):
    with pytest.raises(BadControlError):
        ControlState.decode(data)


def test_control_data_round_trips():
    state = ControlState(TOKEN, RenderOptions(key=-2, tempo=0.9, guide_db=-12))
    assert state.encode() == f"kc:{TOKEN}:-2:90:-12"
    assert ControlState.decode(state.encode()) == state


def test_the_longest_control_data_fits_both_platforms():
    """Telegram takes 64 bytes of callback data, Discord 100 characters of custom id."""
    longest = max(
        (
            ControlState(new_control_token(), RenderOptions(key=key, tempo=tempo, guide_db=guide))
            for key in (-6, 6)
            for tempo in (0.5, 1.5)
            for guide in (None, -30.0, -12.345678, -6.0)
        ),
        key=lambda state: len(state.encode()),
    ).encode()
    assert len(longest.encode()) <= MAX_ENCODED_LENGTH <= 64
    assert ControlState.decode(longest).encode() == longest


@pytest.mark.parametrize("data", HOSTILE)
async def test_a_hostile_press_gets_one_sentence_and_never_reaches_the_backend(data):
    replier = RecordingReplier()
    await _rerenderer(_MustNotRender()).press(USER, replier, data)
    assert replier.texts == [messages.CONTROL_BROKEN] and replier.files == []


async def test_key_without_stems_to_render_from_says_so():
    """With a backend that keeps no stems no buttons are shown, but /key may still be
    typed."""
    replier = RecordingReplier()
    rerenderer = _rerenderer(_NoRenders())
    assert not rerenderer.available
    await rerenderer.command(USER, replier, f"kc:{TOKEN}:0:100:-", "key", "-2")
    assert replier.texts == [RenderUnavailableError().user_message]


class _ShownReplier(RecordingReplier):
    """Records what the user sees in order: texts sent, texts edited, files."""

    def __init__(self) -> None:
        super().__init__()
        self.shown: list[tuple[str, str]] = []

    async def send_text(self, text: str) -> int:
        self.shown.append(("send", text))
        return await super().send_text(text)

    async def edit_text(self, handle: int, text: str) -> None:
        self.shown.append(("edit", text))
        await super().edit_text(handle, text)

    async def send_files(self, files: list[OutgoingFile]) -> None:
        self.shown.append(("files", files[0].title))
        await super().send_files(files)


class _Watched:
    """The real pool, with what the presser had seen when the render reached it."""

    def __init__(self, pool: SeparationPool, replier: _ShownReplier, error: Exception | None):
        self._pool = pool
        self._replier = replier
        self._error = error
        self.seen_at_render: list[list[tuple[str, str]]] = []

    async def cached_render(self, request: RenderRequest) -> JobResult | None:
        return await self._pool.cached_render(request)

    async def render(self, request: RenderRequest) -> JobResult:
        self.seen_at_render.append(list(self._replier.shown))
        if self._error is not None:
            raise self._error
        return await self._pool.render(request)


class _Clock:
    def __init__(self) -> None:
        self.monotonic = 0.0

    def __call__(self) -> float:
        return self.monotonic

    def wall(self) -> datetime:
        return datetime(2026, 12, 7, 12, 0, tzinfo=UTC) + timedelta(seconds=self.monotonic)


async def _pressing(
    chat_flow: ChatFlow,
    song_path: Path,
    *,
    error: Exception | None = None,
    seconds_per_day: float = 3600,
) -> tuple[Rerenderer, _ShownReplier, _Watched, str, RenderAllowance, _Clock]:
    """A finished 6 s song of ``USER`` and a Rerenderer for it with a daily allowance."""
    job = await chat_flow.handle_song(USER, CHAT, RecordingReplier(), upload_of(song_path))
    replier = _ShownReplier()
    backend = _Watched(cast(SeparationPool, chat_flow._backend), replier, error)
    clock = _Clock()
    allowance = RenderAllowance(seconds_per_day=seconds_per_day, clock=clock)
    rerenderer = Rerenderer(
        store=chat_flow._store,
        backend=cast(Any, backend),
        encoding=chat_flow.config.encoding,
        min_mp3_bitrate=chat_flow.config.min_mp3_bitrate,
        allowance=allowance,
        clock=clock.wall,
    )
    assert job.control_token is not None
    return rerenderer, replier, backend, job.control_token, allowance, clock


async def test_a_press_says_changing_it_at_once_and_edits_it_into_the_result(flow, song):
    rerenderer, replier, backend, token, allowance, _ = await _pressing(flow, song)
    await rerenderer.render(USER, replier, ControlState(token, RenderOptions(key=-2)))
    assert backend.seen_at_render == [[("send", messages.CONTROL_RENDERING)]]
    assert replier.shown == [
        ("send", messages.CONTROL_RENDERING),
        ("edit", "Here it is, \N{MINUS SIGN}2 keys:"),
        ("files", "clip (Instrumental, \N{MINUS SIGN}2 keys)"),
    ]
    assert allowance.used(USER.ref) == pytest.approx(6, abs=0.1)
    replier.shown.clear()
    await rerenderer.render(USER, replier, ControlState(token, RenderOptions(key=-2)))
    assert replier.shown[1:] == [
        ("edit", "Here it is, \N{MINUS SIGN}2 keys:"),
        ("files", "clip (Instrumental, \N{MINUS SIGN}2 keys)"),
    ]
    assert len(backend.seen_at_render) == 1  # a cache hit: never reached the render
    assert allowance.used(USER.ref) == pytest.approx(6, abs=0.1)  # and cost nothing


async def test_a_busy_pool_turns_changing_it_into_when_to_try_again(flow, song):
    busy = RendersBusyError(retry_after_seconds=11.2)
    rerenderer, replier, _, token, allowance, _ = await _pressing(flow, song, error=busy)
    await rerenderer.render(USER, replier, ControlState(token, RenderOptions(tempo=0.9)))
    assert replier.shown == [
        ("send", messages.CONTROL_RENDERING),
        ("edit", "I'm busy with other songs right now, try again in 12 s."),
    ]
    assert allowance.used(USER.ref) == 0  # refused: nothing charged


async def test_the_daily_allowance_refuses_new_renders_says_when_and_spares_admins(flow, song):
    rerenderer, replier, _, token, _, clock = await _pressing(flow, song, seconds_per_day=10)
    await rerenderer.render(USER, replier, ControlState(token, RenderOptions(key=1)))
    clock.monotonic += 3600
    replier.shown.clear()
    await rerenderer.render(USER, replier, ControlState(token, RenderOptions(key=2)))
    assert replier.shown == [
        ("send", messages.CONTROL_RENDERING),
        (
            "edit",
            "That's all the changing I can do for you today (0.17 minutes of audio a day). "
            "More frees up in 23 h (tomorrow, 12:00 UTC).",
        ),
    ]
    replier.shown.clear()  # settings rendered before are free, even with nothing left
    await rerenderer.render(USER, replier, ControlState(token, RenderOptions(key=1)))
    assert replier.shown[-1] == ("files", "clip (Instrumental, +1 key)")
    replier.shown.clear()
    admin = dataclasses.replace(USER, is_admin=True)
    await rerenderer.render(admin, replier, ControlState(token, RenderOptions(key=2)))
    assert replier.shown[-1] == ("files", "clip (Instrumental, +2 keys)")
    clock.monotonic += 23 * 3600
    replier.shown.clear()
    await rerenderer.render(USER, replier, ControlState(token, RenderOptions(key=3)))
    assert replier.shown[-1] == ("files", "clip (Instrumental, +3 keys)")
