"""``karaoke-bot separate a b c`` runs its inputs through the pool together."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli.main import main


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
