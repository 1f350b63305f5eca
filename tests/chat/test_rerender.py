"""Karaoke-control data is hostile input, and a backend that keeps no stems says so."""

from __future__ import annotations

from typing import Any, cast

import pytest

from bot.chat import messages
from bot.chat.controls import BadControlError, ControlState
from bot.chat.rerender import Rerenderer
from separation.encode import EncodingSpec
from separation.errors import RenderUnavailableError
from separation.jobs import JobResult, RenderRequest
from separation.render_options import RenderOptions
from tests.chat.test_flow import USER, RecordingReplier

HOSTILE = [
    "",
    "kc",
    "kc:1:0:100",  # a field short
    "kc:1:0:100:-:extra",
    "xx:1:0:100:-",  # not ours
    "kc:0:0:100:-",  # no such job id
    "kc:-5:0:100:-",
    "kc:1:7:100:-",  # key out of range
    "kc:1:0:40:-",  # tempo out of range
    "kc:1:0:100:-3",  # guide out of range
    "kc:1:0:100:nan",
    "kc:one:0:100:-",
    "kc:1:0:100:-" + "0" * 100,  # longer than any platform allows
    "kc:1:0:1e2:-",
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
    state = ControlState(17, RenderOptions(key=-2, tempo=0.9, guide_db=-12))
    assert state.encode() == "kc:17:-2:90:-12"
    assert ControlState.decode(state.encode()) == state


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
    await rerenderer.command(USER, replier, "kc:3:0:100:-", "key", "-2")
    assert replier.texts == [RenderUnavailableError().user_message]
