"""``karaoke-bot separate`` refuses what it cannot do before loading a model, and never
overwrites one input's results with another's."""

from __future__ import annotations

import subprocess
from pathlib import Path

import huggingface_hub.constants
import pytest
import torch

from bot.cli.main import build_parser, main
from bot.cli.separate import apply_separate_overrides
from bot.settings import Settings

MISSING_MODEL = "no-such-model-anywhere"
"""A model that cannot load: a command that reaches the model loader says so instead."""


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KARAOKE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("KARAOKE_CONFIG", raising=False)
    return tmp_path


def _error_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return captured.err.splitlines()


@pytest.mark.parametrize(
    ("flag", "value", "setting"),
    [
        ("--batch-size", "-3", "pool.batch_size"),
        ("--batch-size", "-1", "pool.batch_size"),
        ("--shifts", "-1", "model.shifts"),
        ("--shifts", "21", "model.shifts"),
        ("--overlap", "1", "model.overlap"),
        ("--overlap", "-0.5", "model.overlap"),
        ("--device", "gpu", "model.device"),
    ],
)
def test_flags_are_validated_like_the_settings_they_override(
    cli, capsys, clip_path, flag, value, setting
):
    """``--batch-size -3`` used to hang forever; now it is one line and exit 2."""
    argv = ["separate", str(clip_path), flag, value, "--model", MISSING_MODEL, "-o", "out"]
    assert main(argv) == 2
    [line] = _error_lines(capsys)
    assert line.startswith(f"karaoke-bot: error: argument {flag}: ")
    assert line.endswith(f"(like {setting} in the config file)")
    assert not (cli / "out").exists()


def test_missing_inputs_and_folders_fail_before_the_model_loads(cli, capsys, clip_path):
    folder = cli / "album"
    folder.mkdir()
    missing = cli / "missing.mp3"
    argv = ["separate", str(clip_path), str(missing), str(folder), "--model", MISSING_MODEL]
    assert main([*argv, "-o", "out"]) == 2
    assert _error_lines(capsys) == [
        f"karaoke-bot: error: {missing}: no such file",
        f"karaoke-bot: error: {folder}: is a directory, not an audio file",
        "karaoke-bot: error: nothing was separated: fix those 2 inputs and run again",
    ]  # nothing about the model: it was never loaded
    assert not (cli / "out").exists()


def test_an_output_dir_that_is_a_file_is_refused(cli, capsys, clip_path):
    target = cli / "out.mp3"
    target.write_text("keep me")
    argv = ["separate", str(clip_path), "--model", MISSING_MODEL, "-o", str(target)]
    assert main(argv) == 2
    assert _error_lines(capsys) == [
        f"karaoke-bot: error: argument -o/--output-dir: {target} is a file, not a folder"
    ]
    assert target.read_text() == "keep me"


def test_no_cuda_is_an_environment_error(cli, capsys, clip_path, model_repo):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    model = ["--model", "tiny", "--model-repo", str(model_repo)]  # weights are checked first
    assert main(["separate", str(clip_path), *model, "--device", "cuda", "-o", "out"]) == 2
    [line] = _error_lines(capsys)
    assert line.startswith("karaoke-bot: error: device 'cuda' asked for, but CUDA is not")


def test_missing_weights_are_an_environment_error(cli, capsys, clip_path, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cli / "hub"))
    assert main(["separate", str(clip_path), "--model", "htdemucs_6s", "-o", "out"]) == 2
    [line] = _error_lines(capsys)
    assert line.startswith("karaoke-bot: error: ") and "models download htdemucs_6s" in line


def test_inputs_with_the_same_name_do_not_overwrite_each_other(
    cli, capsys, clip_path, ffmpeg, model_repo
):
    (cli / "a").mkdir()
    (cli / "b").mkdir()
    first, second = cli / "a" / "song.wav", cli / "b" / "song.flac"
    for path, start in ((first, 0), (second, 4)):
        subprocess.run(
            [ffmpeg, "-loglevel", "error", "-ss", str(start), "-t", "3", "-i", str(clip_path),
             str(path)],
            check=True,
        )  # fmt: skip
    argv = ["separate", str(first), str(second), str(first), "-o", "out", "--format", "flac"]
    assert main([*argv, "--model", "tiny", "--model-repo", str(model_repo)]) == 0
    captured = capsys.readouterr()
    assert sorted(path.name for path in (cli / "out").iterdir()) == [
        "song (2) - instrumental.flac",
        "song (2) - vocals.flac",
        "song - instrumental.flac",
        "song - vocals.flac",
    ]
    notes = [line for line in captured.err.splitlines() if line.startswith("karaoke-bot:")]
    assert notes == [
        f"karaoke-bot: {second} has the same name as {first}: its outputs are named "
        "'song (2) - <stem>' so neither overwrites the other"
    ]
    assert len(captured.out.splitlines()) == 4  # the repeated input is written once
    assert (cli / "out" / "song - vocals.flac").read_bytes() != (
        cli / "out" / "song (2) - vocals.flac"
    ).read_bytes()


def test_models_download_of_an_unknown_name_lists_the_known_ones(cli, capsys, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # never the hub
    assert main(["models", "download", "nosuch"]) == 2
    [line] = _error_lines(capsys)
    assert line.startswith("karaoke-bot: error: unknown model 'nosuch': known models are ")
    assert "htdemucs, htdemucs_ft, htdemucs_6s, mdx_extra" in line
    assert "hub" not in line.split("known models")[0]


def test_run_without_a_platform_uses_the_same_prefix(cli, capsys):
    assert main(["run"]) == 2
    assert _error_lines(capsys) == [
        "karaoke-bot: error: no chat platform is enabled: set KARAOKE_TELEGRAM_TOKEN or "
        "KARAOKE_DISCORD_TOKEN (a platform whose token is set is enabled unless the config "
        "says enabled = false)"
    ]


def test_an_unreachable_database_is_an_environment_error(cli, capsys, monkeypatch):
    pytest.importorskip("asyncpg")
    # Port 9 on loopback: nothing listens, the connection is refused at once.
    monkeypatch.setenv("KARAOKE_DATABASE_URL", "postgresql+asyncpg://bot:pw@127.0.0.1:9/k")
    assert main(["stats"]) == 2
    [line] = _error_lines(capsys)
    assert line.startswith("karaoke-bot: error: cannot open database")
    assert ":pw@" not in line


def test_make_random_into_a_file_is_one_line(cli, capsys):
    blocker = cli / "models"
    blocker.write_text("")
    assert main(["models", "make-random", "demo", "--repo", str(blocker)]) == 2
    assert _error_lines(capsys) == [
        f"karaoke-bot: error: argument --repo: cannot write a model into {blocker} (File exists)"
    ]


@pytest.mark.parametrize("precision", ["auto", "fp32", "bf16", "fp16"])
def test_the_precision_flag_overrides_the_setting(precision):
    args = build_parser().parse_args(["separate", "song.mp3", "--precision", precision])
    settings = Settings()
    apply_separate_overrides(args, settings)
    assert settings.model.precision == precision


def test_an_unknown_precision_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["separate", "song.mp3", "--precision", "fp8"])
    assert exit_.value.code == 2
    assert "--precision: invalid choice: 'fp8'" in capsys.readouterr().err


def test_the_command_runs_the_model_at_normal_priority(
    cli, capsys, clip_path, ffmpeg, model_repo, monkeypatch
):
    # A one-shot command has no chat handler to keep responsive: its model thread is
    # scheduled like any other process's (the bot's is SCHED_BATCH; issue 26).
    from separation.model import workers

    asked: list[workers.WorkerPriority] = []
    schedule = workers.apply_thread_priority

    def recorded(priority: workers.WorkerPriority) -> None:
        asked.append(priority)
        schedule(priority)

    monkeypatch.setattr(workers, "apply_thread_priority", recorded)
    song = cli / "song.wav"
    subprocess.run(
        [ffmpeg, "-loglevel", "error", "-t", "2", "-i", str(clip_path), str(song)], check=True
    )
    argv = ["separate", str(song), "-o", "out", "--model", "tiny", "--model-repo", str(model_repo)]
    assert main(argv) == 0
    assert asked == [workers.WorkerPriority.NORMAL]
    assert capsys.readouterr().out.count("out/song - ") == 2
