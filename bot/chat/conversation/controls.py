"""The karaoke controls under a result: which buttons, and what each one asks for.

A button must keep working after a restart and carry everything it needs, since the bot
keeps no table of sent messages: its data names the job (whose owner the flow checks
against whoever pressed) and the *target* options, the state the song will be in after
the press. Pressing "Key −1" on a track already two keys down asks for three keys down.

The job is named by its control token (``storage.records.CONTROL_TOKEN``), never by its
id: ids are sequential, so forged data could probe which jobs exist (issue 20). Buttons
sent before tokens carried ``kc:<id>:...``; such data is refused like any other data we
did not make ("send the song again"), never looked up. Telegram allows 64 bytes of
callback data and Discord 100 characters of custom id; the longest encoding here,
``kc:<12 characters>:-6:150:-12.3``, has 28 (:data:`MAX_ENCODED_LENGTH` is tested).
The data comes back from the user's client, so it is parsed as hostile input: anything
malformed or out of range is refused, never guessed.

A karaoke video (issue 24) is the same song in a state, so it is the same data with a
video flag: ``kc:<token>:<key>:<tempo>:<guide>:v`` (30 characters at most). The
"Lyrics video" button under an instrumental carries it; under a video every button
carries it, so a key change on a video answers with a new video. Data without the flag
(every button sent before videos) still means audio.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TypeVar

from bot.chat.conversation import messages
from separation.audio.render_options import GUIDE_DB_RANGE, KEY_RANGE, TEMPO_RANGE, RenderOptions
from separation.errors import InvalidRenderOptionError
from storage.records import is_control_token

PREFIX = "kc"
"""What every control's data starts with (adapters route presses by it)."""
TEMPO_STEP = 0.05
GUIDE_ON_DB = -12.0
VIDEO_FLAG = "v"
"""The last field of data that asks for a karaoke video."""
"""The level of the guide vocal when the button turns it on."""
_MAX_DATA = 64
MAX_ENCODED_LENGTH = 40
_T = TypeVar("_T")
"""What :meth:`ControlState.encode` never exceeds (tested), far below both platforms'."""


class BadControlError(ValueError):
    """Control data that this bot did not make (or made for a version long gone)."""


@dataclass(frozen=True)
class ControlState:
    """A job's result (named by its control token) as rendered with ``options``."""

    token: str
    options: RenderOptions
    video: bool = False
    """A karaoke video of the song in this state, rather than its audio files."""

    def encode(self) -> str:
        """``kc:<token>:<key>:<tempo in %>:<guide dB or ->``, e.g.
        ``kc:Xa3_9Qe-0bLk:-2:90:-12``, then ``:v`` for a video."""
        guide = "-" if self.options.guide_db is None else f"{self.options.guide_db:g}"
        tempo = round(self.options.tempo * 100)
        video = f":{VIDEO_FLAG}" if self.video else ""
        return f"{PREFIX}:{self.token}:{self.options.key}:{tempo}:{guide}{video}"

    @classmethod
    def decode(cls, data: str) -> ControlState:
        """The state ``data`` asks for.

        Raises:
            BadControlError: not something :meth:`encode` makes (an old button's
                ``kc:<id>:...`` included), or a value out of range.
        """
        parts = data.split(":") if len(data) <= _MAX_DATA else []
        video = len(parts) == 6 and parts[5] == VIDEO_FLAG
        if len(parts) != (6 if video else 5) or parts[0] != PREFIX:
            raise BadControlError(f"not control data: {data[:_MAX_DATA]!r}")
        _, token, key, tempo, guide = parts[:5]
        if not is_control_token(token):
            old = " (a button from before control tokens)" if token.isdigit() else ""
            raise BadControlError(f"no control token in {data!r}{old}")
        try:
            options = RenderOptions(
                key=_small_int(key),
                tempo=_small_int(tempo) / 100,
                guide_db=None if guide == "-" else float(guide),
            )
        except (ValueError, InvalidRenderOptionError) as exc:
            raise BadControlError(f"bad control data {data!r}: {exc}") from None
        return cls(token, options, video)


def current_state(data: Iterable[str]) -> ControlState:
    """The state a result is in, from the data of the buttons under it (each names the
    state a press asks for, never the current one).

    Each button changes one thing (the key, the tempo, the guide vocal, or audio to
    video), so for each field the value most buttons hold is the current one: the key
    buttons agree on the tempo, the tempo buttons on the key, and so on; buttons left
    out at the edge of a range never change that. A single button (the question for a
    song's words) is its own state.

    Raises:
        BadControlError: no data, data not ours, or buttons of different songs.
    """
    states = [ControlState.decode(item) for item in data]
    tokens = {state.token for state in states}
    if len(tokens) != 1:
        raise BadControlError(f"buttons of {len(tokens)} songs")
    options = RenderOptions(
        key=_most_common(state.options.key for state in states),
        tempo=_most_common(state.options.tempo for state in states),
        guide_db=_most_common(state.options.guide_db for state in states),
    )
    return ControlState(tokens.pop(), options, _most_common(state.video for state in states))


def _most_common(values: Iterable[_T]) -> _T:
    return Counter(values).most_common(1)[0][0]


def _small_int(text: str) -> int:
    """A signed integer of a few digits, as :meth:`ControlState.encode` writes them (no
    ``1_000``, no spaces, no 4,000-digit numbers for ``int()`` to chew on)."""
    if not re.fullmatch(r"-?\d{1,4}", text):
        raise ValueError(f"not a small whole number: {text[:16]!r}")
    return int(text)


@dataclass(frozen=True)
class Button:
    label: str
    data: str


def buttons(state: ControlState, *, video_available: bool = False) -> list[list[Button]]:
    """Rows of buttons under a result: key, tempo, guide vocal, then "Lyrics video"
    under audio (when ``video_available``); a button that would leave the allowed range
    is left out. Under a video each of them asks for a new video."""
    options = state.options
    rows: list[list[Button]] = []
    for row in (
        [
            (messages.CONTROL_KEY_DOWN, _with(options, key=options.key - 1)),
            (messages.CONTROL_KEY_UP, _with(options, key=options.key + 1)),
        ],
        [
            (messages.CONTROL_SLOWER, _with(options, tempo=options.tempo - TEMPO_STEP)),
            (messages.CONTROL_FASTER, _with(options, tempo=options.tempo + TEMPO_STEP)),
        ],
        [
            (
                messages.CONTROL_GUIDE_OFF if options.guide_db is not None else
                messages.CONTROL_GUIDE_ON,
                replace(options, guide_db=None if options.guide_db is not None else GUIDE_ON_DB),
            )
        ],
    ):  # fmt: skip
        kept = [
            Button(label, replace(state, options=target).encode())
            for label, target in row
            if target is not None
        ]
        if kept:
            rows.append(kept)
    if video_available and not state.video:
        rows.append([Button(messages.CONTROL_VIDEO, replace(state, video=True).encode())])
    return rows


def _with(options: RenderOptions, **change: float) -> RenderOptions | None:
    """``options`` changed, or None when the change leaves the allowed range."""
    try:
        return replace(options, **change)  # type: ignore[arg-type]  # validated by the class
    except InvalidRenderOptionError:
        return None


def command_options(current: RenderOptions, command: str, argument: str) -> RenderOptions:
    """``/key -2``, ``/tempo 0.9``, ``/guide -12`` or ``/guide off`` applied to ``current``.

    Raises:
        InvalidRenderOptionError: a value out of range or not a number.
    """
    text = argument.strip().replace("\N{MINUS SIGN}", "-")
    if command == "guide" and text.lower() in ("off", "0", ""):
        return replace(current, guide_db=None)
    field, parse = {
        "key": ("key", int),
        "tempo": ("tempo", float),
        "guide": ("guide_db", float),
    }[command]
    low, high = {"key": KEY_RANGE, "tempo": TEMPO_RANGE, "guide": GUIDE_DB_RANGE}[command]
    try:
        value = parse(text)
    except ValueError:
        raise InvalidRenderOptionError(
            option=command, value=text, allowed=f"a number from {low:g} to {high:g}"
        ) from None
    return replace(current, **{field: value})
