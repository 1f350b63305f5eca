"""Re-renders of a separated song (key, tempo, guide vocal) from the stems in its cache
entry: the model never runs again, renders are cached, gone stems are explained."""

from __future__ import annotations

import asyncio
import os
import shutil

import numpy as np
import pytest

from separation.audio.decode import AudioLimits
from separation.audio.encode import EncodingSpec
from separation.audio.probe import probe
from separation.audio.render_options import RenderOptions
from separation.cache.results import MANIFEST
from separation.cpu_budget import CpuPlan, Lane
from separation.errors import RendersBusyError, StemsExpiredError
from separation.jobs import RenderRequest
from tests.support.media import make_tone
from tests.support.pool import WAV, CountingRunner, SlotLog, read_audio, request

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
    # Titled by what was done to each file: the vocals are the plain vocals (issue 23).
    assert _title(guided.outputs["instrumental"], ffmpeg) == (
        f"{clips[3].stem} (Instrumental, guide vocal \N{MINUS SIGN}12 dB)"
    )
    assert _title(guided.outputs["vocals"], ffmpeg) == f"{clips[3].stem} (Vocals)"
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


async def test_beyond_the_bound_a_render_is_refused_busy_but_hits_and_first_results_never_are(
    make_pool, clips
):
    pool = await make_pool(cpu=CpuPlan.for_cores(2, 2), max_queued_renders=1)
    separated = await (await pool.submit(request(clips[3]))).result()
    separated.release()
    key = separated.cache_key
    (await pool.render(RenderRequest(key, RenderOptions(key=-1)))).release()
    log = SlotLog(pool.cpu)
    async with pool.cpu.audio(lane=Lane.FIRST_RESULT):  # a song's encoder holds the slot
        queued = asyncio.create_task(pool.render(RenderRequest(key, RenderOptions(tempo=0.8))))
        await log.wait_for("wait AFTER_THE_FACT")
        with pytest.raises(RendersBusyError) as busy:
            await pool.render(RenderRequest(key, RenderOptions(key=2)))
        assert busy.value.retry_after_seconds >= 1
        assert busy.value.user_message.startswith("I'm busy with other songs right now, try again")
        hit = await pool.render(RenderRequest(key, RenderOptions(key=-1)))  # costs no CPU
        assert hit.cache_hit
        hit.release()
        first = asyncio.create_task(  # the controls a song was sent with: part of the song
            pool.render(RenderRequest(key, RenderOptions(key=3), lane=Lane.FIRST_RESULT))
        )
        await log.wait_for("wait FIRST_RESULT")
    for result in await asyncio.gather(queued, first):
        assert not result.cache_hit
        result.release()
    (await pool.render(RenderRequest(key, RenderOptions(key=2)))).release()  # room again


async def test_a_song_sent_during_renders_of_a_long_song_goes_first(
    make_pool, clips, tmp_path, ffmpeg
):
    """Renders under way pause for the song's decode, model step and encoders; the song
    is done while renders are still waiting."""
    pool = await make_pool(cpu=CpuPlan.for_cores(2, 2), batch_size=1)
    long_song = make_tone(tmp_path / "long.flac", ffmpeg, seconds=15)
    separated = await (await pool.submit(request(long_song, user="storm"))).result()
    separated.release()
    log = SlotLog(pool.cpu)
    finished: list[str] = []

    async def press(options: RenderOptions) -> None:
        (await pool.render(RenderRequest(separated.cache_key, options))).release()
        finished.append("render")

    presses = [asyncio.create_task(press(RenderOptions(key=key))) for key in (-2, -1, 1)]
    await log.wait_for("grant AFTER_THE_FACT")
    song = await (await pool.submit(request(clips[5], user="listener"))).result()
    finished.append("song")
    song.release()
    await asyncio.gather(*presses)
    assert log.songs_served_first()
    assert "pause AFTER_THE_FACT" in log.events  # the render under way stepped aside
    assert finished.index("song") <= 1  # not after the storm: at most the first render ended


async def test_a_press_served_from_the_cache_keeps_its_song_in_use(make_pool, clips):
    """A render served from the cache touches the song it was made from: a singer who
    only presses buttons already rendered keeps the song's stems young and recently used
    (issue 20: otherwise the song's protection ran out under cached presses)."""
    pool = await make_pool()
    separated = await (await pool.submit(request(clips[5], encoding=MP3))).result()
    separated.release()
    press = RenderRequest(separated.cache_key, RenderOptions(key=-1), encoding=MP3)
    (await pool.render(press)).release()
    manifest = pool.config.cache_dir / separated.cache_key[:2] / separated.cache_key / MANIFEST
    os.utime(manifest, (1.0, 1.0))  # as if last used long ago
    hit = await pool.cached_render(press)
    assert hit is not None and hit.cache_hit
    hit.release()
    assert manifest.stat().st_mtime > 1.0
