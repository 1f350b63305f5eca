"""Karaoke controls on the fleet (issue 21): a press re-renders from the stems the worker
shared in the blob store, never runs the model again, and the render is shared too.

Real PostgreSQL, real ``karaoke-bot worker`` processes, the real chat flow.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.chat.conversation import messages
from bot.chat.conversation.controls import Button
from bot.distributed.wire import MANIFEST_NAME, ResultManifest
from separation.audio.render_options import RenderOptions
from separation.cache.render_keys import render_key
from separation.cpu_budget import Lane
from separation.jobs import RenderRequest
from tests.support.chat import RecordingReplier, upload_of
from tests.support.fleet import ROOT, WAV, Fleet, new_user, read, request, samples

pytestmark = pytest.mark.slow

SEPARATIONS = ": attempt 1 on "
"""What a worker logs once per song it starts separating."""


def _button(buttons: list[list[Button]] | None, label: str) -> str:
    assert buttons is not None
    return next(button.data for row in buttons for button in row if button.label == label)


def _manifest(fleet: Fleet, cache_key: str) -> ResultManifest:
    return ResultManifest.from_json(
        (fleet.blobs / "results" / cache_key / MANIFEST_NAME).read_bytes()
    )


async def test_a_tempo_press_renders_on_a_worker_from_the_shared_stems(fleet: Fleet, song):
    worker = fleet.start_worker()
    fleet.wait_until_ready(worker)
    front = await fleet.frontend()
    _, plain = await read(await front.submit(request(song(6, "plain"))))
    plain_samples = samples(plain.outputs["instrumental"])
    song_manifest = _manifest(fleet, plain.cache_key)
    assert sorted(stem.name for stem in song_manifest.stems) == ["instrumental", "vocals"]
    plain.release()

    faster = RenderRequest(plain.cache_key, RenderOptions(tempo=1.25), encoding=WAV)
    assert await front.cached_render(faster) is None
    rendered = await front.render(faster)
    try:
        assert not rendered.cache_hit and list(rendered.outputs) == ["instrumental", "vocals"]
        render_samples = samples(rendered.outputs["instrumental"])
        # 1.25 times as fast: 0.8 of the length (rubberband's edges aside), other samples.
        assert len(render_samples) == pytest.approx(len(plain_samples) / 1.25, rel=0.02)
        assert rendered.duration_seconds == pytest.approx(plain.duration_seconds / 1.25)
    finally:
        rendered.release()
    log = fleet.worker_log(worker)
    assert log.count(SEPARATIONS) == 1  # the song; the render ran no model
    assert f"rendered {render_key(faster)[:12]}" in log
    assert _manifest(fleet, render_key(faster)).render_of == plain.cache_key

    # Another front-end's press of the same button is served from the shared cache.
    other = await fleet.frontend("other")
    again = await other.cached_render(faster)
    assert again is not None and again.cache_hit
    assert samples(again.outputs["instrumental"]).tolist() == render_samples.tolist()
    again.release()


async def test_a_worker_without_the_stems_copies_them_back_from_the_blob_store(fleet: Fleet, song):
    first = fleet.start_worker()
    fleet.wait_until_ready(first)
    front = await fleet.frontend()
    _, plain = await read(await front.submit(request(song(5, "moved"))))
    plain.release()
    first.kill()
    first.wait(timeout=30)
    second = fleet.start_worker()
    fleet.wait_until_ready(second)
    lower = RenderRequest(
        plain.cache_key, RenderOptions(key=-2), encoding=WAV, lane=Lane.FIRST_RESULT
    )
    rendered = await front.render(lower)
    assert list(rendered.outputs) == ["instrumental", "vocals"]
    rendered.release()
    log = fleet.worker_log(second)
    assert SEPARATIONS not in log
    assert "copied the stems of" in log


async def test_a_key_press_through_the_chat_flow_on_the_fleet(
    fleet: Fleet,
    front_ends,
    song,
):
    user, chat = new_user()
    worker = fleet.start_worker()
    fleet.wait_until_ready(worker)
    front = await front_ends("front")
    assert front.flow.rerender.available
    replier = RecordingReplier()
    record = await front.flow.handle_song(user, chat, replier, upload_of(song(5, "press")))
    assert record is not None and record.status == "done"
    instrumental = replier.files[0]
    sent = len(replier.files)
    await front.flow.rerender.press(
        user, replier, _button(instrumental.controls, messages.CONTROL_SLOWER)
    )
    assert messages.CONTROL_RENDERING in replier.texts
    renders = replier.files[sent:]
    assert [file.title for file in renders] == ["press (Instrumental, 95%)", "press (Vocals, 95%)"]
    slower = record.input_duration_seconds / 0.95
    assert renders[0].duration_seconds == pytest.approx(slower, rel=0.02)
    assert renders[0].controls is not None  # new buttons under the render
    assert fleet.worker_log(worker).count(SEPARATIONS) == 1


def test_separate_with_key_runs_the_song_and_its_render_through_the_fleet(
    fleet: Fleet, song, tmp_path: Path
):
    worker = fleet.start_worker()
    fleet.wait_until_ready(worker)
    completed = subprocess.run(
        [sys.executable, "-m", "bot.cli.main", "separate", str(song(5, "cli")), "--key", "-1",
         "--tempo", "0.9", "-o", str(tmp_path / "out"), "--config", str(fleet.config("cli"))],
        capture_output=True, text=True, timeout=90, check=False, cwd=fleet.root,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-2000:]
    written = [Path(line) for line in completed.stdout.split("\n") if line]
    assert sorted(path.name for path in written) == [
        "cli - instrumental (key -1, tempo 90%).wav",  # named by what was rendered
        "cli - vocals (key -1, tempo 90%).wav",
    ]
    # Played at 90 %: 1/0.9 of the song's five seconds.
    assert len(samples(written[0])) / 2 / 44100 == pytest.approx(5 / 0.9, rel=0.03)
    log = fleet.worker_log(worker)
    assert log.count(SEPARATIONS) == 1 and "rendered " in log
