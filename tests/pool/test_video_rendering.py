"""Karaoke videos through the real pool (issue 24): a video is a render of the kept
stems, cached under its own key, made with the song's cover and timed words; the song's
tag lyrics and cover are kept with its separation, and the cover is never mixed."""

from __future__ import annotations

import asyncio
import shutil

import numpy as np
import pytest

from separation.audio.decode import AudioLimits
from separation.audio.encode import EncodingSpec
from separation.audio.probe import probe
from separation.audio.render_options import RenderOptions
from separation.cache.extras import COVER
from separation.cache.render_keys import render_key
from separation.cache.results import CacheEntry
from separation.cpu_budget import CpuPlan, Lane
from separation.errors import LyricsInputError, RendersBusyError, StemsExpiredError
from separation.jobs import RenderRequest
from separation.lyrics.model import LyricsSource
from separation.pool import song_extras
from separation.pool.rendering import Renderer
from separation.pool.video_rendering import VIDEO_AUDIO_WEIGHT
from separation.video.request import VIDEO, VideoLook, VideoRequest
from tests.support.pool import WAV, CountingRunner, SlotLog, read_audio, request
from tests.support.video_songs import LRC, record_video_maker, tagged_song

FLAC = EncodingSpec(format="flac")


def _video(text: str = LRC, **fields: object) -> VideoRequest:
    return VideoRequest(text, LyricsSource.USER, "Little world", **fields)  # type: ignore[arg-type]


def _seconds(path, ffmpeg: str) -> float:
    return read_audio(path, ffmpeg).shape[1] / 44100


def _likeness(path, reference, ffmpeg: str) -> float:
    """The best correlation of two files' mono mixes within 50 ms of each other."""
    one, two = (read_audio(file, ffmpeg).mean(axis=0) for file in (path, reference))
    frames = min(len(one), len(two)) - 4096
    best = 0.0
    for lag in range(-2048, 2049, 16):
        a = one[2048 + lag : 2048 + lag + frames]
        b = two[2048 : 2048 + frames]
        best = max(best, float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12)))
    return best


@pytest.fixture
def song(tmp_path, ffmpeg, clip_path):
    """``song(name, lyrics=..., cover=...)``: a 3-second clip with tags and a cover."""

    def make(name: str, *, lyrics: str | None = LRC, cover: bool = True):
        return tagged_song(tmp_path / f"{name}.flac", ffmpeg, clip_path, lyrics=lyrics, cover=cover)

    return make


async def test_a_video_is_an_mp4_of_the_song_rendered_once_and_cached(
    make_pool, song, ffmpeg, monkeypatch
):
    calls = record_video_maker(monkeypatch)
    runner = CountingRunner()
    pool = await make_pool(runner=runner)
    separated = await (await pool.submit(request(song("a")))).result()
    separated.release()
    batches = len(runner.batches)
    video = RenderRequest(separated.cache_key, RenderOptions(), encoding=FLAC, video=_video())
    assert await pool.cached_render(video) is None
    made = await pool.render(video)
    try:
        assert list(made.outputs) == [VIDEO] and made.outputs[VIDEO].suffix == ".mp4"
        assert not made.cache_hit and made.lyrics_timing == "line"
        assert made.duration_seconds == pytest.approx(separated.duration_seconds)
        assert _seconds(made.outputs[VIDEO], ffmpeg) == pytest.approx(3.0, abs=0.1)
        # Its sound track is the song's instrumental (AAC: alike, not equal).
        assert _likeness(made.outputs[VIDEO], separated.outputs["instrumental"], ffmpeg) > 0.95
        (call,) = calls.calls
        assert call["vocals"].name.startswith("vocals") and call["tempo"] == 1.0
        assert call["cover"] is not None and call["cover"].exists()  # the song's own cover
        assert call["threads"] == 1 and call["max_bytes"] is None
    finally:
        made.release()
    # The same press again, in another audio encoding (ignored for a video): a hit.
    again = await pool.render(
        RenderRequest(separated.cache_key, RenderOptions(), encoding=WAV, video=_video())
    )
    assert again.cache_hit and again.outputs == made.outputs and again.lyrics_timing == "line"
    again.release()
    assert len(calls.calls) == 1 and len(runner.batches) == batches  # no model, one video


async def test_a_key_or_tempo_change_on_a_video_is_another_video(
    make_pool, song, ffmpeg, monkeypatch
):
    calls = record_video_maker(monkeypatch)
    pool = await make_pool()
    separated = await (await pool.submit(request(song("b")))).result()
    separated.release()
    plain = RenderRequest(separated.cache_key, RenderOptions(), video=_video())
    lower = RenderRequest(separated.cache_key, RenderOptions(key=-2), video=_video())
    slower = RenderRequest(separated.cache_key, RenderOptions(tempo=0.8), video=_video())
    assert len({render_key(plain), render_key(lower), render_key(slower)}) == 3
    results = [await pool.render(one) for one in (plain, lower, slower)]
    try:
        assert not any(result.cache_hit for result in results)
        assert len({result.outputs[VIDEO] for result in results}) == 3
        # The sound tracks differ: the key change is in the video's audio.
        first, second = (read_audio(r.outputs[VIDEO], ffmpeg) for r in results[:2])
        frames = min(first.shape[1], second.shape[1])
        assert abs(first[:, :frames] - second[:, :frames]).max() > 0.01
        assert results[2].duration_seconds == pytest.approx(3 / 0.8, rel=0.01)
        assert _seconds(results[2].outputs[VIDEO], ffmpeg) == pytest.approx(3 / 0.8, abs=0.15)
        # Words are timed on the original-tempo vocals; the maker scales them.
        assert [call["tempo"] for call in calls.calls] == [1.0, 1.0, 0.8]
        assert len({call["vocals"] for call in calls.calls}) == 1
    finally:
        for result in results:
            result.release()


async def test_another_look_or_other_words_are_another_video(make_pool, song):
    pool = await make_pool()
    separated = await (await pool.submit(request(song("c")))).result()
    separated.release()
    key = separated.cache_key
    base = RenderRequest(key, RenderOptions(), video=_video())
    looks = [
        base,
        RenderRequest(key, RenderOptions(), video=_video(look=VideoLook(fill_colour="#00ff00"))),
        RenderRequest(key, RenderOptions(), video=_video("[00:00.20]Other words")),
        RenderRequest(key, RenderOptions(), video=_video(), max_output_bytes=10_000_000),
    ]
    assert len({render_key(one) for one in looks}) == 4
    audio = RenderRequest(key, RenderOptions())
    assert render_key(audio) != render_key(base)


async def test_a_song_keeps_its_tag_lyrics_and_its_cover_with_its_stems(make_pool, song):
    pool = await make_pool()
    tagged = await (await pool.submit(request(song("d")))).result()
    tagged.release()
    assert tagged.tag_lyrics is not None
    assert "Hello little" in tagged.tag_lyrics and "[00:01.80]" in tagged.tag_lyrics
    assert tagged.lyrics_timing is None
    entry = await pool.stored_entry(tagged.cache_key)
    assert entry is not None and entry.pin is not None
    entry.pin.release()
    assert sorted(entry.stems) == [COVER, "instrumental", "vocals"]
    assert COVER not in entry.outputs
    again = await (await pool.submit(request(song("d")))).result()  # a cache hit
    assert again.cache_hit and again.tag_lyrics == tagged.tag_lyrics
    again.release()
    # A render of the song keeps the words for its own buttons.
    lower = await pool.render(RenderRequest(tagged.cache_key, RenderOptions(key=1)))
    assert lower.tag_lyrics == tagged.tag_lyrics
    lower.release()

    bare = await (await pool.submit(request(song("e", lyrics=None, cover=False)))).result()
    bare.release()
    assert bare.tag_lyrics is None
    entry = await pool.stored_entry(bare.cache_key)
    assert entry is not None and entry.pin is not None
    entry.pin.release()
    assert sorted(entry.stems) == ["instrumental", "vocals"]


async def test_the_operator_can_turn_tag_lyrics_off(make_pool, song):
    pool = await make_pool(read_tag_lyrics=False)
    result = await (await pool.submit(request(song("f")))).result()
    result.release()
    assert result.tag_lyrics is None


async def test_a_failing_extras_reader_never_fails_the_song(make_pool, song, monkeypatch):
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("mutagen exploded")

    monkeypatch.setattr(song_extras, "read_lyrics_tags", broken)
    monkeypatch.setattr(song_extras, "extract_cover", broken)
    pool = await make_pool()
    result = await (await pool.submit(request(song("g")))).result()
    result.release()
    assert result.tag_lyrics is None and list(result.outputs) == ["instrumental", "vocals"]
    entry = await pool.stored_entry(result.cache_key)
    assert entry is not None and entry.pin is not None
    entry.pin.release()
    assert COVER not in entry.stems and not (entry.folder / "cover.jpg").exists()


async def test_the_cover_is_never_mixed_into_a_four_stem_instrumental(make_pool, song, ffmpeg):
    """Four-stem stems make the instrumental from every non-vocal stem: the cover kept
    among them must stay out of that sum (and out of an identity render's outputs)."""
    pool = await make_pool()
    four = await (await pool.submit(request(song("h"), stems="four", encoding=FLAC))).result()
    four.release()
    entry = await pool.stored_entry(four.cache_key)
    assert entry is not None and entry.pin is not None
    entry.pin.release()
    assert COVER in entry.stems and len(entry.stems) == 5
    two = await pool.render(
        RenderRequest(four.cache_key, RenderOptions(key=1), encoding=WAV, stems="two")
    )
    try:
        assert list(two.outputs) == ["instrumental", "vocals"]
        assert _seconds(two.outputs["instrumental"], ffmpeg) == pytest.approx(3.0, abs=0.05)
    finally:
        two.release()
    # Another format of the song is encoded from the stems; the cover goes along with
    # them (its buttons make videos too), never among the outputs.
    as_wav = await (await pool.submit(request(song("h"), stems="four", encoding=WAV))).result()
    as_wav.release()
    assert COVER not in as_wav.outputs
    copy = await pool.stored_entry(as_wav.cache_key)
    assert copy is not None and copy.pin is not None
    copy.pin.release()
    assert COVER in copy.stems


async def test_unusable_words_are_the_users_to_fix_and_gone_stems_are_explained(make_pool, song):
    pool = await make_pool()
    separated = await (await pool.submit(request(song("i")))).result()
    separated.release()
    untimed = _video("just words, no times", align=False)
    with pytest.raises(LyricsInputError) as caught:
        await pool.render(RenderRequest(separated.cache_key, RenderOptions(), video=untimed))
    assert caught.value.user_message
    shutil.rmtree(next(iter(separated.outputs.values())).parent)  # what eviction does
    with pytest.raises(StemsExpiredError):
        await pool.render(RenderRequest(separated.cache_key, RenderOptions(), video=_video()))


def test_the_header_says_whether_a_song_has_a_picture(tmp_path, ffmpeg, clip_path):
    limits = AudioLimits().probe_limits()
    path = tagged_song(tmp_path / "t.flac", ffmpeg, clip_path, lyrics=LRC, cover=True)
    header = probe(path, ffmpeg=ffmpeg, limits=limits)
    assert header.has_picture is True
    assert header.tags["lyrics"].startswith("[00:00.50]Hello little")
    bare = tagged_song(tmp_path / "b.flac", ffmpeg, clip_path, lyrics=None, cover=False)
    assert probe(bare, ffmpeg=ffmpeg, limits=limits).has_picture is False


async def test_no_cover_is_extracted_from_a_song_whose_header_has_no_picture(
    make_pool, song, ffmpeg, monkeypatch
):
    extracted: list[str] = []
    real = song_extras.extract_cover

    def counting(upload, output, *, ffmpeg):
        extracted.append(upload.name)
        return real(upload, output, ffmpeg=ffmpeg)

    monkeypatch.setattr(song_extras, "extract_cover", counting)
    pool = await make_pool()
    limits = AudioLimits().probe_limits()
    for name, has_cover in (("k", False), ("l", True)):
        path = song(name, cover=has_cover)
        header = probe(path, ffmpeg=ffmpeg, limits=limits)
        (await (await pool.submit(request(path, probe=header))).result()).release()
    assert extracted == ["l.flac"]


def test_a_video_counts_as_several_renders_in_the_wait_estimate(tmp_path):
    source = CacheEntry("k" * 64, tmp_path, {}, {"duration_seconds": 60.0})
    audio = RenderRequest("k" * 64, RenderOptions(tempo=0.5), stems="two")
    video = RenderRequest("k" * 64, RenderOptions(tempo=0.5), video=_video())
    assert Renderer._audio_seconds(source, audio) == pytest.approx(240.0)  # 2 outputs
    assert Renderer._audio_seconds(source, video) == pytest.approx(120.0 * VIDEO_AUDIO_WEIGHT)


async def test_a_video_waits_behind_songs_and_counts_against_the_render_bound(make_pool, song):
    pool = await make_pool(cpu=CpuPlan.for_cores(2, 2), max_queued_renders=1)
    separated = await (await pool.submit(request(song("j")))).result()
    separated.release()
    key = separated.cache_key
    log = SlotLog(pool.cpu)
    async with pool.cpu.audio(lane=Lane.FIRST_RESULT):  # a song's encoder holds the slot
        queued = asyncio.create_task(
            pool.render(RenderRequest(key, RenderOptions(), video=_video()))
        )
        await log.wait_for("wait AFTER_THE_FACT")
        with pytest.raises(RendersBusyError):
            await pool.render(RenderRequest(key, RenderOptions(key=2), video=_video()))
    made = await queued
    assert list(made.outputs) == [VIDEO]
    made.release()
