"""``karaoke-bot separate a b c`` runs its inputs through the pool together."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli.main import main
from separation.audio.decode import AudioLimits
from separation.audio.probe import probe
from tests.support.pool import read_audio


@pytest.fixture
def cli_args(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_repo: Path) -> list[str]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KARAOKE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("KARAOKE_CONFIG", raising=False)
    return ["--model-repo", str(model_repo), "--model", "tiny", "-o", str(tmp_path / "out"),
            "--format", "flac", "--batch-size", "4"]  # fmt: skip


def test_several_inputs_separate_together_and_a_bad_one_fails_alone(
    cli_args, clips, tmp_path, capsys
):
    bad = tmp_path / "notes.ogg"
    bad.write_text("not audio")
    inputs = [str(clips[3]), str(bad), str(clips[5])]
    assert main(["separate", *inputs, *cli_args]) == 1
    captured = capsys.readouterr()
    failures = [line for line in captured.err.splitlines() if line.startswith("karaoke-bot:")]
    assert failures == [f"karaoke-bot: error: {bad}: not an audio or video file ffmpeg can read"]
    out = tmp_path / "out"
    expected = {
        f"{clips[s].stem} - {name}.flac" for s in (3, 5) for name in ("instrumental", "vocals")
    }
    assert {path.name for path in out.iterdir()} == expected
    assert captured.out.splitlines()[0].endswith("clip-3s - instrumental.flac")
    assert list((tmp_path / "data" / "cache").glob("??/*/manifest.json"))
    assert not list((tmp_path / "data" / "tmp").iterdir())

    for path in out.iterdir():
        path.unlink()
    assert main(["separate", str(clips[5]), *cli_args]) == 0  # from the cache this time
    assert len(list(out.iterdir())) == 2


def test_karaoke_controls_re_render_the_separated_song(cli_args, clips, tmp_path, ffmpeg):
    """``--key -2 --tempo 0.8``: the same files, two semitones down and 1.25x as long,
    titled with the change; the separation itself is cached for the next change."""
    assert main(["separate", str(clips[3]), *cli_args]) == 0
    out = tmp_path / "out"
    plain = {path.name: read_audio(path, ffmpeg) for path in out.iterdir()}
    for path in out.iterdir():
        path.unlink()
    assert main(["separate", str(clips[3]), *cli_args, "--key", "-2", "--tempo", "0.8"]) == 0
    for name, audio in plain.items():  # named by the change, beside the plain files
        changed = read_audio(out / name.replace(".flac", " (key -2, tempo 80%).flac"), ffmpeg)
        assert changed.shape[1] == pytest.approx(audio.shape[1] / 0.8, rel=0.02)
    info = probe(out / f"{clips[3].stem} - instrumental (key -2, tempo 80%).flac", ffmpeg=ffmpeg,
                 limits=AudioLimits().probe_limits())  # fmt: skip
    assert info.tags["title"] == "clip-3s (Instrumental, \N{MINUS SIGN}2 keys, 80%)"


@pytest.mark.parametrize(
    ("flags", "sentence"),
    [
        (["--key", "7"], "The key can't be 7"),
        (["--tempo", "0.4"], "tempo"),
        (["--guide", "-40"], "guide"),
    ],
)
def test_out_of_range_controls_are_one_sentence_before_the_model_loads(
    cli_args, clips, tmp_path, capsys, flags, sentence
):
    assert main(["separate", str(clips[3]), *cli_args, *flags]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("karaoke-bot: error: ") and sentence in line
    assert not (tmp_path / "out").exists()


def test_a_guide_vocal_titles_the_instrumental_only(cli_args, clips, tmp_path, ffmpeg):
    """``--guide -12``: the vocals' audio is the plain vocals, so is their title (issue 23)."""
    assert main(["separate", str(clips[3]), *cli_args, "--key", "-1", "--guide", "-12"]) == 0
    titles = {
        path.name: probe(path, ffmpeg=ffmpeg, limits=AudioLimits().probe_limits()).tags["title"]
        for path in (tmp_path / "out").iterdir()
    }
    [instrumental] = [title for name, title in titles.items() if "instrumental" in name]
    [vocals] = [title for name, title in titles.items() if "vocals" in name]
    assert (
        instrumental
        == "clip-3s (Instrumental, \N{MINUS SIGN}1 key, guide vocal \N{MINUS SIGN}12 dB)"
    )
    assert vocals == "clip-3s (Vocals, \N{MINUS SIGN}1 key)"
