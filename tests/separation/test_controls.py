"""Karaoke controls: key, tempo and guide vocal rendered from lossless stems by ffmpeg.

Known signals (sines, seeded noise) go through the real ffmpeg and rubberband; what comes
out is decoded again and measured: spectral peaks, durations, levels.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from separation.audio.encode import EncodingSpec, StemMode
from separation.audio.render_options import RenderOptions
from separation.errors import AudioExportError, InvalidRenderOptionError
from separation.model.engine import SeparatedStems, _FloatFile
from separation.rendering.controls import (
    PAUSE_FRAMES,
    LosslessStems,
    render_controls,
    write_lossless_stems,
)
from separation.rendering.render import RenderedOutputs
from tests.support.media import decode_file

RATE = 44100
SECONDS = 3.0
WAV = EncodingSpec("wav")  # float WAV: lossless, and no encoder delay to measure around
SOURCES = ["drums", "bass", "other", "vocals"]
MINUS = "\N{MINUS SIGN}"  # titles use the real minus sign, cache tokens plain ASCII


def _sine(hz: float, amplitude: float = 0.5, seconds: float = SECONDS) -> np.ndarray:
    """A stereo sine, ``(2, frames)`` float32."""
    t = np.arange(int(seconds * RATE)) / RATE
    return np.tile(amplitude * np.sin(2 * np.pi * hz * t), (2, 1)).astype(np.float32)


def _noise(amplitude: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (amplitude * rng.standard_normal((2, int(SECONDS * RATE)))).astype(np.float32)


def _separated(tmp_path: Path, **sources: np.ndarray) -> SeparatedStems:
    """SeparatedStems as the engine hands them over; missing sources are silent."""
    frames = next(iter(sources.values())).shape[-1]
    data = np.stack([sources.get(name, np.zeros((2, frames), np.float32)) for name in SOURCES])
    file = _FloatFile(tmp_path / "model-output.f32", frames, len(SOURCES) * 2)
    file.write(0, data.transpose(2, 0, 1).reshape(frames, len(SOURCES) * 2))
    return SeparatedStems(file, frames, SOURCES, 2, 0.0, 1.0)


def _lossless(
    tmp_path: Path,
    ffmpeg: str,
    instrumental: np.ndarray,
    vocals: np.ndarray,
    stems: StemMode = "two",
) -> LosslessStems:
    """Two-stem lossless stems whose instrumental is ``instrumental`` (all in "other")."""
    folder = tmp_path / "stems"
    folder.mkdir(exist_ok=True)
    separated = _separated(tmp_path, other=instrumental, vocals=vocals)
    return write_lossless_stems(separated, folder, stems=stems, ffmpeg=ffmpeg, sample_rate=RATE)


def _render(
    lossless: LosslessStems,
    tmp_path: Path,
    ffmpeg: str,
    options: RenderOptions,
    names: tuple[str, ...] = ("instrumental", "vocals"),
) -> RenderedOutputs:
    outputs = {name: tmp_path / f"{name} {options.cache_token()}.wav" for name in names}
    return render_controls(
        lossless.paths,
        lossless.scale,
        outputs,
        options=options,
        spec=WAV,
        tags={},
        ffmpeg=ffmpeg,
        sample_rate=RATE,
    )


def _read(path: Path, ffmpeg: str, tmp_path: Path) -> np.ndarray:
    return decode_file(path, ffmpeg, tmp_path).read_all()


def _spectrum(samples: np.ndarray) -> np.ndarray:
    """The power spectrum of the left channel (Hann window)."""
    return np.abs(np.fft.rfft(samples[0] * np.hanning(samples.shape[-1]))) ** 2


def _peak_hz(samples: np.ndarray) -> float:
    """The strongest frequency of the left channel (parabolic interpolation of the bin)."""
    spectrum = _spectrum(samples)
    index = int(np.argmax(spectrum))
    left, centre, right = np.log(spectrum[index - 1 : index + 2])
    offset = 0.5 * (left - right) / (left - 2 * centre + right)
    return float((index + offset) * RATE / samples.shape[-1])


def _purity(samples: np.ndarray, hz: float) -> float:
    """The fraction of the energy within ±1 % of ``hz``: near 1.0 for a clean sine."""
    spectrum = _spectrum(samples)
    frequencies = np.fft.rfftfreq(samples.shape[-1], 1 / RATE)
    return float(spectrum[np.abs(frequencies - hz) <= 0.01 * hz].sum() / spectrum.sum())


# -- key and tempo ----------------------------------------------------------------------
@dataclass(frozen=True)
class _BeyondUserRange(RenderOptions):
    """Options outside what users may ask for (±6 keys): an octave is the cleanest pitch
    check of the render chain, which itself has no such limit."""

    def __post_init__(self) -> None:
        pass


@pytest.mark.parametrize(
    ("options", "expected_hz"),
    [
        (_BeyondUserRange(key=-12), 220.0),
        (RenderOptions(key=2), 493.88),
        (RenderOptions(key=-6), 311.13),
        (RenderOptions(key=6), 622.25),
    ],
    ids=["-12", "+2", "-6", "+6"],
)
def test_key_change_moves_the_pitch_and_keeps_the_duration(options, expected_hz, tmp_path, ffmpeg):
    lossless = _lossless(tmp_path, ffmpeg, _sine(440), _sine(440, 0.2))
    rendered = _render(lossless, tmp_path, ffmpeg, options)
    for name, path in rendered.paths.items():
        samples = _read(path, ffmpeg, tmp_path)
        assert _peak_hz(samples) == pytest.approx(expected_hz, rel=0.01), name
        assert samples.shape[-1] / RATE == pytest.approx(SECONDS, rel=0.01), name
        # A held note stays one note: no warble from phase resets (0.78 with the default
        # transients=crisp at -12).
        assert _purity(samples, expected_hz) >= 0.99, name


@pytest.mark.parametrize("tempo", [0.8, 0.5, 1.5])
def test_tempo_change_scales_the_duration_and_keeps_the_pitch(tempo, tmp_path, ffmpeg):
    lossless = _lossless(tmp_path, ffmpeg, _sine(440), _sine(440, 0.2))
    rendered = _render(lossless, tmp_path, ffmpeg, RenderOptions(tempo=tempo))
    for name, path in rendered.paths.items():
        samples = _read(path, ffmpeg, tmp_path)
        assert samples.shape[-1] / RATE == pytest.approx(SECONDS / tempo, rel=0.01), name
        assert _peak_hz(samples) == pytest.approx(440.0, rel=0.01), name
        assert _purity(samples, 440.0) >= 0.99, name  # 0.96 at 0.8 with transients=crisp


# -- guide vocal and identity ------------------------------------------------------------
def test_guide_vocal_is_mixed_in_at_its_level(tmp_path, ffmpeg):
    instrumental, vocals = _sine(300), _noise(0.1)
    lossless = _lossless(tmp_path, ffmpeg, instrumental, vocals)
    rendered = _render(lossless, tmp_path, ffmpeg, RenderOptions(guide_db=-12))
    mixed = _read(rendered.paths["instrumental"], ffmpeg, tmp_path)
    assert mixed.shape == instrumental.shape
    # The least-squares gain of the vocals in what was added to the instrumental.
    added = (mixed - instrumental).ravel().astype(np.float64)
    gain = np.dot(added, vocals.ravel()) / np.dot(vocals.ravel(), vocals.ravel())
    assert 20 * np.log10(gain) == pytest.approx(-12.0, abs=0.5)
    # The vocals output carries no guide: it is the vocals, unchanged at key 0 / tempo 1.
    np.testing.assert_allclose(
        _read(rendered.paths["vocals"], ffmpeg, tmp_path), vocals, atol=2**-22
    )


def test_identity_reproduces_the_outputs(tmp_path, ffmpeg):
    instrumental, vocals = _sine(300) + _noise(0.05, seed=1), _noise(0.1)
    lossless = _lossless(tmp_path, ffmpeg, instrumental, vocals)
    assert lossless.scale == 1.0
    rendered = _render(lossless, tmp_path, ffmpeg, RenderOptions())
    assert rendered.gain == 1.0
    for name, expected in (("instrumental", instrumental), ("vocals", vocals)):
        # 24-bit FLAC in between: half a step of 2**-23 at most.
        np.testing.assert_allclose(
            _read(rendered.paths[name], ffmpeg, tmp_path), expected, atol=2**-22
        )


def test_a_render_pauses_between_pieces_and_pausing_changes_nothing(tmp_path, ffmpeg):
    """The pause point is called between pieces of rubberband output and between the
    blocks fed to the encoders (issue 20: a waiting song takes the slot there); ffmpeg
    waits on its pipes meanwhile and the files come out the same."""
    instrumental, vocals = _sine(300) + _noise(0.05, seed=1), _noise(0.1)
    lossless = _lossless(tmp_path, ffmpeg, instrumental, vocals)
    options = RenderOptions(key=-2, tempo=0.9)
    plain_folder = tmp_path / "plain"
    plain_folder.mkdir()
    plain = _render(lossless, plain_folder, ffmpeg, options)
    calls: list[float] = []

    def pause_point() -> None:
        calls.append(0.0)
        if len(calls) % 3 == 0:
            time.sleep(0.05)  # a song holds the slot meanwhile

    paused_folder = tmp_path / "paused"
    paused_folder.mkdir()
    paused = render_controls(
        lossless.paths,
        lossless.scale,
        {name: paused_folder / f"{name}.wav" for name in ("instrumental", "vocals")},
        options=options,
        spec=WAV,
        tags={},
        ffmpeg=ffmpeg,
        sample_rate=RATE,
        pause_point=pause_point,
    )
    frames = SECONDS / 0.9 * RATE
    assert len(calls) >= 2 * math.ceil(frames / PAUSE_FRAMES)  # each output, piece by piece
    for name in ("instrumental", "vocals"):
        np.testing.assert_array_equal(
            _read(paused.paths[name], ffmpeg, tmp_path), _read(plain.paths[name], ffmpeg, tmp_path)
        )


def test_four_stem_set_sums_every_other_source_into_the_instrumental(tmp_path, ffmpeg):
    separated = _separated(
        tmp_path, drums=_noise(0.05, seed=2), bass=_sine(60, 0.3), other=_sine(700, 0.1),
        vocals=_noise(0.1),
    )  # fmt: skip
    lossless = write_lossless_stems(
        separated, tmp_path, stems="four", ffmpeg=ffmpeg, sample_rate=RATE
    )
    assert sorted(lossless.paths) == sorted(SOURCES)
    rendered = _render(lossless, tmp_path, ffmpeg, RenderOptions(), names=("instrumental",))
    assert (lossless.scale, rendered.gain) == (1.0, 1.0)
    expected = separated.read(0, separated.frames)[:3].sum(axis=0)
    np.testing.assert_allclose(
        _read(rendered.paths["instrumental"], ffmpeg, tmp_path), expected, atol=2**-21
    )


# -- levels: the stored scale and the clip rule -------------------------------------------
def test_quiet_stems_get_no_gain(tmp_path, ffmpeg):
    lossless = _lossless(tmp_path, ffmpeg, _sine(300), _sine(1000, 0.3))
    rendered = _render(lossless, tmp_path, ffmpeg, RenderOptions(key=3, guide_db=-6))
    assert rendered.gain == 1.0


def test_loud_render_gets_one_shared_gain(tmp_path, ffmpeg):
    instrumental, vocals = _sine(300, 0.9), _sine(1000, 0.5)
    lossless = _lossless(tmp_path, ffmpeg, instrumental, vocals)
    assert lossless.scale == 1.0  # the stems fit; the guide vocal makes the mix clip
    rendered = _render(lossless, tmp_path, ffmpeg, RenderOptions(guide_db=-6))
    assert rendered.gain < 1.0
    mixed = _read(rendered.paths["instrumental"], ffmpeg, tmp_path)
    assert np.abs(mixed).max() == pytest.approx(0.999, abs=1e-4)
    unclipped = instrumental + vocals * np.float32(10 ** (-6 / 20))
    np.testing.assert_allclose(mixed, unclipped * rendered.gain, atol=1e-5)
    # The same gain on the vocals output: the balance between outputs is kept.
    np.testing.assert_allclose(
        _read(rendered.paths["vocals"], ffmpeg, tmp_path), vocals * rendered.gain, atol=1e-5
    )


def test_stems_beyond_full_scale_are_stored_scaled_and_rendered_at_their_level(tmp_path, ffmpeg):
    instrumental, vocals = _sine(300, 2.0), _sine(1000, 0.5)
    lossless = _lossless(tmp_path, ffmpeg, instrumental, vocals)
    assert lossless.scale == pytest.approx(0.999 / 2.0, rel=1e-4)
    stored = _read(lossless.paths["instrumental"], ffmpeg, tmp_path)
    assert np.abs(stored).max() == pytest.approx(0.999, abs=1e-4)
    # The vocals alone fit in full scale once the scale is undone: no gain at all.
    alone = _render(lossless, tmp_path, ffmpeg, RenderOptions(), names=("vocals",))
    assert alone.gain == 1.0
    np.testing.assert_allclose(_read(alone.paths["vocals"], ffmpeg, tmp_path), vocals, atol=1e-5)
    # Both outputs: the loud instrumental sets one gain, relative to the model's levels.
    both = _render(lossless, tmp_path / "stems", ffmpeg, RenderOptions())
    assert both.gain == pytest.approx(0.999 / 2.0, rel=1e-4)
    for name, expected in (("instrumental", instrumental), ("vocals", vocals)):
        output = _read(both.paths[name], ffmpeg, tmp_path)
        assert np.abs(output).max() <= 1.0
        np.testing.assert_allclose(output, expected * both.gain, atol=1e-5)


# -- failures ----------------------------------------------------------------------------
def _assert_nothing_left(folder: Path) -> None:
    leftovers = [path.name for path in folder.iterdir() if path.suffix == ".wav"]
    assert not leftovers
    assert not list(folder.glob(".*.partial"))
    assert not list(folder.glob(".controls-*"))


def test_missing_stem_raises_export_error_and_leaves_nothing(tmp_path, ffmpeg):
    lossless = _lossless(tmp_path, ffmpeg, _sine(300), _sine(1000, 0.3))
    lossless.paths["vocals"].unlink()
    with pytest.raises(AudioExportError) as caught:
        _render(lossless, tmp_path, ffmpeg, RenderOptions(key=-2))
    assert caught.value.path.endswith(".wav")
    assert caught.value.stderr  # ffmpeg's own reason
    _assert_nothing_left(tmp_path)


@pytest.mark.parametrize("damage", ["not-flac", "damaged-middle"])
def test_corrupt_stem_raises_export_error_and_leaves_nothing(damage, tmp_path, ffmpeg):
    lossless = _lossless(tmp_path, ffmpeg, _noise(0.2, seed=3), _noise(0.1))
    path = lossless.paths["instrumental"]
    content = bytearray(path.read_bytes())
    if damage == "not-flac":
        content = bytearray(b"this is not audio" * 100)
    else:
        middle = len(content) // 2
        content[middle : middle + 4096] = np.random.default_rng(0).bytes(4096)
    path.write_bytes(bytes(content))
    with pytest.raises(AudioExportError):
        _render(lossless, tmp_path, ffmpeg, RenderOptions(guide_db=-12))
    _assert_nothing_left(tmp_path)


def test_output_without_a_stem_is_refused(tmp_path, ffmpeg):
    lossless = _lossless(tmp_path, ffmpeg, _sine(300), _sine(1000, 0.3))
    with pytest.raises(ValueError, match="drums"):
        _render(lossless, tmp_path, ffmpeg, RenderOptions(), names=("drums",))


# -- options -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value", "option"),
    [
        ("key", 7, "key"),
        ("key", -7, "key"),
        ("key", 1.5, "key"),
        ("tempo", 0.4, "tempo"),
        ("tempo", 1.6, "tempo"),
        ("tempo", float("nan"), "tempo"),
        ("guide_db", -40, "guide"),
        ("guide_db", 0, "guide"),
    ],
)
def test_out_of_range_options_are_refused_by_name(field, value, option):
    with pytest.raises(InvalidRenderOptionError) as caught:
        RenderOptions(**{field: value})
    error = caught.value
    assert isinstance(error, ValueError)
    assert (error.option, error.allowed) == (option, error.allowed)
    assert error.value is value or error.value == value
    assert str(error).startswith(f"The {option} can't be")
    assert str(error).endswith(".") and ". " not in str(error)  # one sentence


def test_range_limits_are_accepted_and_tempo_is_rounded():
    assert RenderOptions(key=-6, tempo=0.5, guide_db=-30).tempo == 0.5
    assert RenderOptions(key=6, tempo=1.5, guide_db=-6).key == 6
    assert RenderOptions(tempo=0.8999999).tempo == 0.9
    assert RenderOptions(tempo=0.8999999) == RenderOptions(tempo=0.9)
    assert RenderOptions(tempo=1.234).tempo == 1.23


@pytest.mark.parametrize(
    ("options", "suffix", "token"),
    [
        (RenderOptions(), "", "identity"),
        (RenderOptions(key=-2, tempo=0.9), f"{MINUS}2 keys, 90%", "k-2_t0.90_goff"),
        (RenderOptions(key=1), "+1 key", "k1_t1.00_goff"),
        (
            RenderOptions(key=-1, guide_db=-12),
            f"{MINUS}1 key, guide vocal {MINUS}12 dB",
            "k-1_t1.00_g-12",
        ),
        (
            RenderOptions(key=-2, tempo=0.9, guide_db=-12),
            f"{MINUS}2 keys, 90%, guide vocal {MINUS}12 dB",
            "k-2_t0.90_g-12",
        ),
        (
            RenderOptions(tempo=1.25, guide_db=-7.5),
            f"125%, guide vocal {MINUS}7.5 dB",
            "k0_t1.25_g-7.5",
        ),
    ],
)
def test_title_suffix_and_cache_token(options, suffix, token):
    assert options.title_suffix() == suffix
    assert options.title_suffix("instrumental") == suffix
    # The guide vocal is mixed into the instrumental only (issue 23).
    assert options.title_suffix("vocals") == ", ".join(
        part for part in suffix.split(", ") if not part.startswith("guide")
    )
    assert options.cache_token() == token
    assert options.is_identity == (token == "identity")


def test_the_guided_output_is_the_instrumental():
    """``render_options`` spells the name out (``separation.jobs`` imports it)."""
    from separation.audio.render_options import GUIDED_OUTPUT
    from separation.jobs import INSTRUMENTAL

    assert GUIDED_OUTPUT == INSTRUMENTAL
