"""Another format, bitrate or stem-mode subset of a song already separated is an encode
from its kept lossless stems, never a forward pass (issue 23: 17 s as cached MP3, 66-72 s
as Opus/FLAC/WAV of the same songs)."""

from __future__ import annotations

import numpy as np

from separation.audio.encode import EncodingSpec
from separation.audio.render_options import RenderOptions
from separation.jobs import RenderRequest
from tests.support.pool import WAV, CountingRunner, read_audio, request

FLAC = EncodingSpec(format="flac")
MP3 = EncodingSpec(format="mp3", bitrate_kbps=192)
OPUS = EncodingSpec(format="opus", bitrate_kbps=128)


async def _separate(pool, path, **fields):
    result = await (await pool.submit(request(path, fallback_title="Clip", **fields))).result()
    result.release()
    return result


async def test_another_format_is_encoded_from_the_stems(make_pool, clips, ffmpeg, tmp_path):
    runner = CountingRunner()
    pool = await make_pool(runner=runner)
    first = await _separate(pool, clips[3], encoding=FLAC)
    batches = len(runner.batches)
    assert batches > 0
    flac = {name: read_audio(path, ffmpeg) for name, path in first.outputs.items()}

    wav = await _separate(pool, clips[3], encoding=WAV)
    assert len(runner.batches) == batches  # no forward pass
    assert list(wav.outputs) == ["instrumental", "vocals"]
    assert not wav.cache_hit and wav.cache_key != first.cache_key  # its own entry
    for name, path in wav.outputs.items():  # lossless to lossless: sample-exact
        np.testing.assert_array_equal(read_audio(path, ffmpeg), flac[name])

    for spec in (MP3, OPUS):
        encoded = await _separate(pool, clips[3], encoding=spec)
        assert len(runner.batches) == batches
        assert encoded.bitrate_kbps == spec.bitrate_kbps
        # Within the codec's tolerance of a fresh separation in that format.
        fresh = await _separate(
            await make_pool(cache_dir=tmp_path / f"fresh-{spec.format}"), clips[3], encoding=spec
        )
        for name, path in encoded.outputs.items():
            ours, theirs = read_audio(path, ffmpeg), read_audio(fresh.outputs[name], ffmpeg)
            frames = min(ours.shape[1], theirs.shape[1])
            error = ours[:, :frames] - theirs[:, :frames]
            assert np.sqrt(np.mean(error**2)) < 0.01 * np.sqrt(np.mean(theirs**2)) + 1e-4

    # Its entry keeps the stems as well: its buttons work (as the chat presses them).
    lower = await pool.render(RenderRequest(wav.cache_key, RenderOptions(key=-1), encoding=WAV))
    assert list(lower.outputs) == ["instrumental", "vocals"]
    lower.release()
    assert len(runner.batches) == batches


async def test_two_stems_of_a_four_stem_song_are_mixed_from_its_stems(
    make_pool, clips, ffmpeg, tmp_path
):
    runner = CountingRunner()
    pool = await make_pool(runner=runner)
    four = await _separate(pool, clips[3], encoding=FLAC, stems="four")
    batches = len(runner.batches)
    assert len(four.outputs) == 4

    two = await _separate(pool, clips[3], encoding=FLAC, stems="two")
    assert len(runner.batches) == batches  # no forward pass
    assert list(two.outputs) == ["instrumental", "vocals"]
    fresh = await _separate(
        await make_pool(cache_dir=tmp_path / "fresh"), clips[3], encoding=FLAC, stems="two"
    )
    for name, path in two.outputs.items():  # sums of 24-bit stems: within a few LSB
        np.testing.assert_allclose(
            read_audio(path, ffmpeg), read_audio(fresh.outputs[name], ffmpeg), atol=4 / 2**23
        )
    # Buttons under it re-render two outputs, not the four the stems came from.
    guided = await pool.render(
        RenderRequest(two.cache_key, RenderOptions(guide_db=-12), encoding=WAV)
    )
    assert list(guided.outputs) == ["instrumental", "vocals"]
    guided.release()

    # The other way round the stems cannot give drums and bass: that one is separated.
    await _separate(pool, clips[5], encoding=FLAC, stems="two")
    before = len(runner.batches)
    await _separate(pool, clips[5], encoding=FLAC, stems="four")
    assert len(runner.batches) > before
