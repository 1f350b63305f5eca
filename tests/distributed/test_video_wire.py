"""A karaoke video request crosses the queue intact and is checked on the way in; the
shared cache carries a song's tag lyrics and a video's timing; unusable words fail
typed on the front-end as they would in process (issue 24)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.distributed.video_wire import video_from_json, video_to_json
from bot.distributed.wire import (
    OutputFile,
    ResultManifest,
    error_from_dict,
    error_to_dict,
    render_from_payload,
    render_to_payload,
)
from separation.audio.render_options import RenderOptions
from separation.errors import LyricsInputError
from separation.jobs import RenderRequest
from separation.lyrics.model import LyricsSource
from separation.video.request import VideoLook, VideoRequest

KEY = "cd" * 32
VIDEO = VideoRequest(
    "[00:01.00]Hé {\\c&H0000FF&} \\N \u05e9\u05dc\u05d5\u05dd\n",
    LyricsSource.TAGS,
    "Title \u201cquoted\u201d",
    artist=None,
    look=VideoLook(width=640, height=360, fps=12, fill_colour="#00ff00"),
    align=False,
)


def test_a_video_render_survives_the_queue() -> None:
    request = RenderRequest(KEY, RenderOptions(key=-2, tempo=0.8), video=VIDEO)
    payload = json.loads(json.dumps(render_to_payload(request, job_id="render-1")))
    assert render_from_payload(payload) == request
    audio = RenderRequest(KEY, RenderOptions(key=1))
    assert render_from_payload(json.loads(json.dumps(render_to_payload(audio, job_id="r")))) == (
        audio
    )


def _with(**changes: Any) -> dict[str, Any]:
    raw = video_to_json(VIDEO)
    for name, value in changes.items():
        if name.startswith("look_"):
            raw["look"] = {**raw["look"], name.removeprefix("look_"): value}
        else:
            raw[name] = value
    return raw


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "lyrics",
        _with(lyrics_text=None),
        _with(lyrics_text="x" * 1_000_001),
        _with(lyrics_source="the internet"),
        _with(title=["a"]),
        _with(artist=7),
        _with(align="yes"),
        _with(look="big"),
        _with(look_width=100_000),
        _with(look_height=True),
        _with(look_fps=2.5),
        _with(look_fill_colour="{\\c&H0000FF&}"),
        _with(look_background="red"),
        _with(look_font="/etc/passwd"),
        _with(look_font="relative/font.ttf"),
        _with(look_shader="evil"),
    ],
)
def test_a_video_request_out_of_shape_is_refused(raw: object) -> None:
    with pytest.raises(ValueError):
        video_from_json(raw)


def test_a_font_must_be_a_font_file_on_the_worker(tmp_path: Path) -> None:
    font = tmp_path / "Font.ttf"
    font.write_bytes(b"\0\1\0\0")
    assert video_from_json(_with(look_font=str(font))).look.font == str(font)
    with pytest.raises(ValueError):
        video_from_json(_with(look_font=str(tmp_path / "missing.ttf")))


def test_the_shared_manifest_carries_tag_lyrics_and_timing() -> None:
    prefix = f"results/{KEY}/"
    manifest = ResultManifest(
        KEY,
        [OutputFile("video", prefix + "video.mp4", 10, "0" * 64)],
        3.0,
        None,
        tag_lyrics="[00:01.00]Hello",
        lyrics_timing="aligned",
    )
    assert ResultManifest.from_json(manifest.to_json()) == manifest
    raw = json.loads(manifest.to_json())
    assert ResultManifest.from_json(json.dumps({**raw, "tag_lyrics": "x" * 300_000}).encode()) == (
        ResultManifest(**{**raw, "outputs": manifest.outputs, "tag_lyrics": None})
    )
    old = {k: v for k, v in raw.items() if k not in ("tag_lyrics", "lyrics_timing")}
    assert ResultManifest.from_json(json.dumps(old).encode()).lyrics_timing is None
    with pytest.raises(ValueError):
        ResultManifest.from_json(json.dumps({**raw, "lyrics_timing": "perfect"}).encode())


class _NoTimesError(LyricsInputError):
    """Like a parser's subclass (``separation.lyrics.parse``), unknown to the wire."""

    def __init__(self) -> None:
        self.lines = 3
        super().__init__("These words have no times, and I can't place them on the song.")


def test_unusable_words_fail_typed_on_the_front_end() -> None:
    back = error_from_dict(json.loads(json.dumps(error_to_dict(_NoTimesError()))))
    assert type(back) is LyricsInputError
    assert back.user_message == "These words have no times, and I can't place them on the song."
