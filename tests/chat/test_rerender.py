"""Karaoke-control data is hostile input, and a backend that keeps no stems says so."""

from __future__ import annotations

from typing import Any, cast

import pytest

from bot.chat import messages
from bot.chat.controls import MAX_ENCODED_LENGTH, BadControlError, ControlState
from bot.chat.rerender import Rerenderer
from separation.encode import EncodingSpec
from separation.errors import RenderUnavailableError
from separation.jobs import JobResult, RenderRequest
from separation.render_options import RenderOptions
from storage.records import new_control_token
from tests.chat.test_flow import USER, RecordingReplier

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
    """With the distributed backend no buttons are shown, but /key may still be typed."""
    replier = RecordingReplier()
    rerenderer = _rerenderer(_NoRenders())
    assert not rerenderer.available
    await rerenderer.command(USER, replier, f"kc:{TOKEN}:0:100:-", "key", "-2")
    assert replier.texts == [RenderUnavailableError().user_message]
