"""Audio out: formats, tags, durations, the bitrate chooser, clipping and export errors."""

from __future__ import annotations

import numpy as np
import pytest

from separation.audio.decode import AudioLimits
from separation.audio.encode import (
    EncodingSpec,
    StreamingEncoder,
    Tags,
    choose_mp3_bitrate,
    estimate_mp3_bytes,
)
from separation.audio.probe import probe
from separation.errors import AudioExportError, OutputTooLargeError
from separation.model.engine import SeparatedStems, _FloatFile
from separation.rendering.render import clip_gain, iter_outputs, output_names, render_outputs
from tests.support.media import decode_file
from tests.support.stems import SOURCES, stems_from


def test_instrumental_plus_vocals_add_up_to_the_model_output(music_stems):
    total = music_stems.read(0, music_stems.frames).sum(axis=0)
    for block in iter_outputs(music_stems, "two", block_frames=10_000):
        assert set(block) == {"instrumental", "vocals"}
    outputs = next(iter_outputs(music_stems, "two", block_frames=music_stems.frames))
    np.testing.assert_allclose(outputs["instrumental"] + outputs["vocals"], total, atol=1e-6)


def test_output_names():
    assert output_names(SOURCES, "two") == ["instrumental", "vocals"]
    assert output_names([*SOURCES, "guitar", "piano"], "four")[-2:] == ["guitar", "piano"]


def test_six_source_instrumental_includes_guitar_and_piano(tmp_path):
    data = np.ones((6, 2, 100), dtype=np.float32) * np.arange(1, 7, dtype=np.float32)[:, None, None]
    stems = SeparatedStems(
        _FloatFile(tmp_path / "s.f32", 100, 12),
        100,
        ["drums", "bass", "other", "vocals", "guitar", "piano"],
        2,
        0.0,
        1.0,
    )
    stems._file.write(0, data.transpose(2, 0, 1).reshape(100, 12))
    block = next(iter_outputs(stems, "two"))
    assert np.all(block["instrumental"] == 1 + 2 + 3 + 5 + 6)
    assert np.all(block["vocals"] == 4)


def test_denormalisation_uses_the_input_statistics(tmp_path):
    data = np.full((4, 2, 10), 2.0, dtype=np.float32)
    stems = stems_from(tmp_path, data, mean=0.5, std=0.25)
    np.testing.assert_allclose(stems.read(0, 10), 2.0 * 0.25 + 0.5)
    np.testing.assert_allclose(stems.read(0, 10, normalised=True), 2.0)


def test_one_gain_for_all_outputs_when_clipping(tmp_path, ffmpeg, caplog):
    data = np.zeros((4, 2, 44100), dtype=np.float32)
    data[:3, :, 1000] = 0.9  # instrumental peaks at 2.7
    data[3, :, 2000] = 0.5
    stems = stems_from(tmp_path, data)
    assert clip_gain(stems, "two") == pytest.approx(0.999 / 2.7)
    paths = {name: tmp_path / f"{name}.wav" for name in ("instrumental", "vocals")}
    with caplog.at_level("INFO"):
        rendered = render_outputs(
            stems,
            paths,
            stems="two",
            spec=EncodingSpec("wav"),
            tags={},
            ffmpeg=ffmpeg,
            sample_rate=44100,
        )
    assert "applying one gain" in caplog.text
    instrumental = decode_file(paths["instrumental"], ffmpeg, tmp_path).read_all()
    vocals = decode_file(paths["vocals"], ffmpeg, tmp_path).read_all()
    assert np.abs(instrumental).max() == pytest.approx(0.999, abs=1e-5)
    # The balance between outputs is unchanged: the same gain on both.
    assert vocals[0, 2000] / instrumental[0, 1000] == pytest.approx(0.5 / 2.7, rel=1e-5)
    assert rendered.gain == pytest.approx(0.999 / 2.7)


def test_no_gain_when_nothing_clips(music_stems):
    assert clip_gain(music_stems, "two") == 1.0


@pytest.mark.parametrize(
    "spec",
    [
        EncodingSpec("mp3"),
        EncodingSpec("mp3", bitrate_kbps=128),
        EncodingSpec("opus"),
        EncodingSpec("flac"),
        EncodingSpec("wav"),
        EncodingSpec("wav", wav_float=False),
    ],
    ids=["mp3-320", "mp3-128", "opus", "flac", "wav-float", "wav-16"],
)
def test_formats_round_trip_with_duration_and_tags(spec, music_stems, tmp_path, ffmpeg):
    paths = {name: tmp_path / f"out {name}.{spec.extension}" for name in ("instrumental", "vocals")}
    tags = {
        "instrumental": Tags(title="Song (Instrumental)", artist="Band"),
        "vocals": Tags(title="Song (Vocals)", artist="Band"),
    }
    render_outputs(
        music_stems, paths, stems="two", spec=spec, tags=tags, ffmpeg=ffmpeg, sample_rate=44100
    )
    for name, path in paths.items():
        decoded = decode_file(path, ffmpeg, tmp_path)
        assert abs(decoded.duration_seconds - 3.0) <= 0.010, name
        info = probe(path, ffmpeg=ffmpeg, limits=AudioLimits().probe_limits())
        assert info.tags["title"] == f"Song ({name.capitalize()})"
        assert info.tags["artist"] == "Band"
    assert not list(tmp_path.glob(".*.partial"))


def test_lossless_formats_keep_the_samples(music_stems, tmp_path, ffmpeg):
    expected = next(iter_outputs(music_stems, "two", block_frames=music_stems.frames))["vocals"]
    for spec, tolerance in ((EncodingSpec("wav"), 0.0), (EncodingSpec("flac"), 2**-22)):
        path = tmp_path / f"vocals.{spec.extension}"
        render_outputs(
            music_stems,
            {"instrumental": tmp_path / f"i.{spec.extension}", "vocals": path},
            stems="two",
            spec=spec,
            tags={},
            ffmpeg=ffmpeg,
            sample_rate=44100,
        )
        np.testing.assert_allclose(
            decode_file(path, ffmpeg, tmp_path).read_all(), expected, atol=tolerance
        )


def test_flac_is_24_bit(music_stems, tmp_path, ffmpeg):
    import subprocess

    path = tmp_path / "v.flac"
    render_outputs(
        music_stems,
        {"instrumental": tmp_path / "i.flac", "vocals": path},
        stems="two",
        spec=EncodingSpec("flac"),
        tags={},
        ffmpeg=ffmpeg,
        sample_rate=44100,
    )
    banner = subprocess.run(
        [ffmpeg, "-hide_banner", "-i", str(path)], capture_output=True, text=True
    ).stderr
    assert "s32 (24 bit)" in banner


def test_four_stem_mode_writes_every_source(music_stems, tmp_path, ffmpeg):
    paths = {name: tmp_path / f"{name}.mp3" for name in SOURCES}
    rendered = render_outputs(
        music_stems,
        paths,
        stems="four",
        spec=EncodingSpec("mp3"),
        tags={},
        ffmpeg=ffmpeg,
        sample_rate=44100,
    )
    assert list(rendered.paths) == SOURCES
    assert all(path.stat().st_size > 10_000 for path in paths.values())


@pytest.mark.parametrize("duration", [30.0, 180.0, 600.0, 1200.0])
@pytest.mark.parametrize("budget_mib", [8, 10, 25, 50])
def test_chosen_bitrate_is_the_highest_that_fits(duration, budget_mib):
    budget = budget_mib * 2**20
    try:
        bitrate = choose_mp3_bitrate(duration, budget, min_bitrate=64)
    except OutputTooLargeError:
        assert estimate_mp3_bytes(duration, 64) > budget
        return
    assert estimate_mp3_bytes(duration, bitrate) <= budget
    higher = [rate for rate in (320, 256, 224, 192, 160, 128, 112, 96, 80) if rate > bitrate]
    assert all(estimate_mp3_bytes(duration, rate) > budget for rate in higher)


def test_chosen_bitrate_really_fits(music_stems, tmp_path, ffmpeg):
    budget = 80_000  # 3 s: 192 kb/s (~72 KB + headers) fits, 224 does not
    bitrate = choose_mp3_bitrate(3.0, budget, min_bitrate=32)
    path = tmp_path / "fit.mp3"
    render_outputs(
        music_stems,
        {"instrumental": path, "vocals": tmp_path / "v.mp3"},
        stems="two",
        spec=EncodingSpec("mp3", bitrate_kbps=bitrate),
        tags={},
        ffmpeg=ffmpeg,
        sample_rate=44100,
    )
    assert path.stat().st_size <= budget
    assert bitrate >= 128


def test_too_long_for_any_acceptable_bitrate():
    with pytest.raises(OutputTooLargeError) as caught:
        choose_mp3_bitrate(3600, 10 * 2**20, min_bitrate=96)
    assert caught.value.min_bitrate == 96
    assert "96 kb/s" in str(caught.value)


def test_export_error_is_raised_and_leaves_no_partial_file(tmp_path, ffmpeg):
    target = tmp_path / "missing-folder" / "out.mp3"
    encoder = StreamingEncoder(
        target, EncodingSpec("mp3"), Tags(), ffmpeg=ffmpeg, sample_rate=44100
    )
    with pytest.raises(AudioExportError) as caught:
        for _ in range(50):
            encoder.write(np.zeros((2, 44100), dtype=np.float32))
        encoder.close()
    assert caught.value.path == str(target)
    assert not target.exists()


def test_render_failure_aborts_every_encoder(music_stems, tmp_path, ffmpeg):
    paths = {"instrumental": tmp_path / "ok.mp3", "vocals": tmp_path / "nope" / "v.mp3"}
    with pytest.raises(AudioExportError):
        render_outputs(
            music_stems,
            paths,
            stems="two",
            spec=EncodingSpec("mp3"),
            tags={},
            ffmpeg=ffmpeg,
            sample_rate=44100,
        )
    assert not paths["instrumental"].exists()
    assert not list(tmp_path.glob(".*.partial"))


def test_tags_are_one_line_and_bounded():
    args = Tags(title="a\nb\tc " + "x" * 500, artist=None).as_ffmpeg_args()
    assert args[0] == "-metadata"
    assert args[1].startswith("title=a b c ")
    assert len(args[1]) <= len("title=") + 200
    assert len(args) == 2
