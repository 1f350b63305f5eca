"""``karaoke-bot separate`` and ``karaoke-bot models`` through the real entry point."""

from __future__ import annotations

import huggingface_hub.constants
import pytest

from bot.cli.main import main
from tests.support.media import decode_file


@pytest.fixture
def cli_env(tmp_path, monkeypatch, model_repo):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KARAOKE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("KARAOKE_CONFIG", raising=False)
    return ["--model-repo", str(model_repo), "--model", "tiny", "-o", str(tmp_path / "out")]


def test_separate_writes_instrumental_and_vocals(cli_env, clip_path, tmp_path, ffmpeg, capsys):
    assert main(["separate", str(clip_path), *cli_env]) == 0
    out = tmp_path / "out"
    instrumental = out / "demucs-test-clip - instrumental.mp3"
    vocals = out / "demucs-test-clip - vocals.mp3"
    assert capsys.readouterr().out.split() != []
    assert sorted(p.name for p in out.iterdir()) == sorted([instrumental.name, vocals.name])
    source = decode_file(clip_path, ffmpeg, tmp_path).duration_seconds
    for path in (instrumental, vocals):
        assert abs(decode_file(path, ffmpeg, tmp_path).duration_seconds - source) <= 0.010
    assert not list((tmp_path / "data" / "tmp").iterdir())  # job folders removed


def test_four_stems_in_flac(cli_env, tmp_path, ffmpeg, clip_path):
    short = tmp_path / "short song.wav"
    import subprocess

    subprocess.run(
        [ffmpeg, "-loglevel", "error", "-i", str(clip_path), "-t", "5", str(short)], check=True
    )
    assert main(["separate", str(short), "--stems", "four", "--format", "flac", *cli_env]) == 0
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [f"short song - {stem}.flac" for stem in ("bass", "drums", "other", "vocals")]


def test_a_bad_input_fails_alone_with_one_line(cli_env, tmp_path, clip_path, capsys):
    text = tmp_path / "notes.mp3"
    text.write_text("not audio")
    assert main(["separate", str(text), str(clip_path), *cli_env]) == 1
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("karaoke-bot:")]
    # The operator's wording, not the chat's ("Send an MP3...").
    assert errors == [f"karaoke-bot: error: {text}: not an audio or video file ffmpeg can read"]
    assert len(captured.out.splitlines()) == 2  # the good input's two files


def test_usage_errors_exit_2(cli_env, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["separate", "--stems", "three", "x.mp3"])
    assert caught.value.code == 2
    assert main(["separate", "x.mp3", "--overlap", "2", *cli_env]) == 2
    assert "overlap" in capsys.readouterr().err


def test_bad_config_file_exits_2(tmp_path, capsys):
    config = tmp_path / "config.toml"
    config.write_text("[model]\nnmae = 'x'\n")
    assert main(["--config", str(config), "models", "list"]) == 2
    assert "unknown setting 'model.nmae'" in capsys.readouterr().err


def test_missing_weights_is_one_clear_line(tmp_path, monkeypatch, capsys, clip_path):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("KARAOKE_DATA_DIR", str(tmp_path / "data"))
    assert main(["separate", str(clip_path), "--model", "htdemucs_ft", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("karaoke-bot: error: ")
    assert "karaoke-bot models download htdemucs_ft" in err
    assert "Traceback" not in err


def test_models_list_and_download(monkeypatch, capsys, model_repo, tmp_path):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert main(["models", "list"]) == 0
    listing = capsys.readouterr().out
    for name in ("htdemucs", "htdemucs_ft", "htdemucs_6s", "mdx_extra"):
        assert name in listing
    assert "not downloaded" in listing
    assert main(["models", "download", "htdemucs"]) == 2  # offline: the environment's problem
    assert capsys.readouterr().err.startswith("karaoke-bot: error: cannot download htdemucs")


def test_make_random_model_then_separate_with_it(tmp_path, monkeypatch, clip_path, capsys):
    monkeypatch.setenv("KARAOKE_DATA_DIR", str(tmp_path / "data"))
    repo = tmp_path / "models"
    assert main(["models", "make-random", "demo", "--repo", str(repo)]) == 0
    assert (repo / "demo.yaml").is_file()
    assert (
        main(
            [
                "separate",
                str(clip_path),
                "--model",
                "demo",
                "--model-repo",
                str(repo),
                "-o",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    assert len(list((tmp_path / "out").glob("*.mp3"))) == 2


def test_the_process_ends_at_once_with_its_code_and_everything_written(
    cli_env, tmp_path, clip_path, ffmpeg
):
    # Run as a user runs it (``main()`` without argv): the process skips the interpreter's
    # shutdown (``exit_now``), but keeps its exit status, its printed paths, its error
    # line and its last log line.
    import os
    import subprocess
    import sys
    from pathlib import Path

    song, text = tmp_path / "song.wav", tmp_path / "notes.mp3"
    subprocess.run(
        [ffmpeg, "-loglevel", "error", "-t", "2", "-i", str(clip_path), str(song)], check=True
    )
    text.write_text("not audio")
    environment = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    completed = subprocess.run(
        [sys.executable, "-m", "bot.cli.main", "separate", str(text), str(song), *cli_env, "-v"],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert completed.returncode == 1, completed.stderr[-2000:]
    assert completed.stdout.splitlines() == [
        str(tmp_path / "out" / "song - instrumental.mp3"),
        str(tmp_path / "out" / "song - vocals.mp3"),
    ]
    assert f"karaoke-bot: error: {text}: not an audio" in completed.stderr
    assert "pool stopped" in completed.stderr  # the log, flushed before the end
