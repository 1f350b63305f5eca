"""Re-renders of a separated song (key, tempo, guide vocal) from the stems in its cache
entry: the model never runs again, renders are cached, gone stems are explained."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from separation.decode import AudioLimits
from separation.encode import EncodingSpec
from separation.errors import StemsExpiredError
from separation.jobs import RenderRequest
from separation.probe import probe
from separation.render_options import RenderOptions
from tests.pool.helpers import WAV, CountingRunner, read_audio, request

MP3 = EncodingSpec(format="mp3", bitrate_kbps=128)


def _title(path, ffmpeg: str) -> str:
    return probe(path, ffmpeg=ffmpeg, limits=AudioLimits().probe_limits()).tags["title"]


async def test_three_presses_three_renders_and_the_model_ran_once(make_pool, clips, ffmpeg):
    runner = CountingRunner()
    pool = await make_pool(runner=runner)
    separated = await (
        await pool.submit(request(clips[5], encoding=MP3, fallback_title="Clip"))
    ).result()
    separated.release()
    batches = len(runner.batches)
    assert batches > 0
    renders = {}
    for options in (RenderOptions(key=-1), RenderOptions(tempo=0.8), RenderOptions(guide_db=-12)):
        result = await pool.render(RenderRequest(separated.cache_key, options, encoding=MP3))
        assert not result.cache_hit and list(result.outputs) == ["instrumental", "vocals"]
        renders[options.cache_token()] = result
        result.release()
    assert len(runner.batches) == batches  # no forward pass for any render
    slower = renders[RenderOptions(tempo=0.8).cache_token()]
    assert slower.duration_seconds == pytest.approx(5 / 0.8, rel=0.01)
    assert read_audio(slower.outputs["instrumental"], ffmpeg).shape[1] == pytest.approx(
        5 / 0.8 * 44100, rel=0.02
    )
    assert _title(renders["k-1_t1.00_goff"].outputs["instrumental"], ffmpeg) == (
        "Clip (Instrumental, \N{MINUS SIGN}1 key)"
    )
    assert _title(slower.outputs["vocals"], ffmpeg) == "Clip (Vocals, 80%)"
    again = await pool.render(
        RenderRequest(separated.cache_key, RenderOptions(key=-1), encoding=MP3)
    )
    assert again.cache_hit and again.outputs == renders["k-1_t1.00_goff"].outputs
    again.release()


async def test_a_guide_vocal_is_the_instrumental_plus_quiet_vocals(make_pool, clips, ffmpeg):
    pool = await make_pool()
    separated = await (await pool.submit(request(clips[3]))).result()
    separated.release()
    guided = await pool.render(
        RenderRequest(separated.cache_key, RenderOptions(guide_db=-12), encoding=WAV)
    )
    instrumental = read_audio(separated.outputs["instrumental"], ffmpeg)
    vocals = read_audio(separated.outputs["vocals"], ffmpeg)
    added = read_audio(guided.outputs["instrumental"], ffmpeg) - instrumental
    gain = float(np.sum(added * vocals) / np.sum(vocals * vocals))
    assert 20 * np.log10(gain) == pytest.approx(-12, abs=0.5)
    np.testing.assert_allclose(read_audio(guided.outputs["vocals"], ffmpeg), vocals, atol=1e-4)
    guided.release()


async def test_evicted_stems_are_explained_not_recomputed(make_pool, clips):
    runner = CountingRunner()
    pool = await make_pool(runner=runner)
    separated = await (await pool.submit(request(clips[3]))).result()
    separated.release()
    batches = len(runner.batches)
    shutil.rmtree(next(iter(separated.outputs.values())).parent)  # what eviction does
    with pytest.raises(StemsExpiredError) as caught:
        await pool.render(RenderRequest(separated.cache_key, RenderOptions(key=2)))
    assert "send the song again" in caught.value.user_message.lower()
    assert len(runner.batches) == batches


async def test_a_pool_that_keeps_no_stems_explains_too(make_pool, clips):
    pool = await make_pool(keep_stems=False)
    separated = await (await pool.submit(request(clips[3]))).result()
    separated.release()
    with pytest.raises(StemsExpiredError):
        await pool.render(RenderRequest(separated.cache_key, RenderOptions(tempo=1.1)))
