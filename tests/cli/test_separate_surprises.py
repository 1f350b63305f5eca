"""``karaoke-bot separate`` never surprises (issue 23): it checks before it creates or
imports anything heavy, names control outputs by what was rendered, keeps its cache in
the user's cache folder and says so, and speaks in one sentence of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli.main import build_parser, main

_CHILD = """
import sys
from bot.cli.main import main
code = main(sys.argv[1:])
print("torch imported" if "torch" in sys.modules else "torch never imported")
sys.exit(code)
"""


@pytest.fixture
def user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder with no config and no data folder set; the user's cache
    folder (XDG) elsewhere, so the test can see what lands where."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("KARAOKE_DATA_DIR", raising=False)
    monkeypatch.delenv("KARAOKE_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "karaoke-bot"


def test_missing_weights_fail_before_torch_and_create_nothing(tmp_path, clip_path):
    work = tmp_path / "empty"
    work.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),  # this checkout's code
        "HF_HOME": str(tmp_path / "hf"),
        "XDG_CACHE_HOME": str(tmp_path / "xdg"),
    }
    env.pop("KARAOKE_DATA_DIR", None)
    env.pop("KARAOKE_CONFIG", None)
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, "separate", str(clip_path), "--model", "htdemucs_6s"],
        cwd=work, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert child.returncode == 2
    [line] = child.stderr.splitlines()
    assert line.startswith("karaoke-bot: error: weights for model 'htdemucs_6s'")
    assert child.stdout.strip() == "torch never imported"
    assert list(work.iterdir()) == []
    assert not (tmp_path / "xdg").exists()


def test_an_unknown_model_in_a_folder_is_one_sentence_of_ours(user_cache, capsys, model_repo):
    argv = ["separate", "x.mp3", "--model", "nosuch", "--model-repo", str(model_repo)]
    Path("x.mp3").write_bytes(b"")
    assert main(argv) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("karaoke-bot: error: unknown model 'nosuch': ")
    assert "neither" not in line and "tiny" in line


def test_guide_off_is_accepted():
    args = build_parser().parse_args(["separate", "song.mp3", "--guide", "off"])
    assert args.guide is None
    assert build_parser().parse_args(["separate", "s.mp3", "--guide", "-12"]).guide == -12.0


def test_control_outputs_sit_beside_each_other(user_cache, capsys, clip_path, model_repo):
    model = ["--model", "tiny", "--model-repo", str(model_repo), "-o", "out", "--format", "wav"]
    for controls in ([], ["--key", "-2"], ["--key", "-1", "--tempo", "0.9"], ["--guide", "-12"]):
        assert main(["separate", str(clip_path), *model, *controls]) == 0
    stem = clip_path.stem
    assert sorted(path.name for path in Path("out").iterdir()) == sorted(
        [
            f"{stem} - instrumental.wav",
            f"{stem} - vocals.wav",
            f"{stem} - instrumental (key -2).wav",
            f"{stem} - vocals (key -2).wav",
            f"{stem} - instrumental (key -1, tempo 90%).wav",
            f"{stem} - vocals (key -1, tempo 90%).wav",
            f"{stem} - instrumental (guide -12 dB).wav",  # the vocals are the plain ones
        ]
    )


def test_the_cache_is_in_the_user_cache_folder_and_said(user_cache, capsys, clip_path, model_repo):
    argv = ["separate", str(clip_path), "--model", "tiny", "--model-repo", str(model_repo)]
    assert main([*argv, "-o", "out"]) == 0
    err = capsys.readouterr().err
    assert list((user_cache / "cache").glob("??/*/manifest.json"))
    assert sorted(path.name for path in Path.cwd().iterdir()) == ["out"]  # no ./data
    assert err.splitlines()[-1].startswith(f"results cached in {user_cache / 'cache'} (")
    assert "job slot" not in err  # pool internals are -v


def test_no_cache_reads_and_writes_nothing_there(user_cache, capsys, clip_path, model_repo):
    argv = ["separate", str(clip_path), "--model", "tiny", "--model-repo", str(model_repo)]
    assert main([*argv, "-o", "out", "--no-cache"]) == 0
    assert not list(user_cache.glob("cache/??/*/manifest.json"))
    assert "results cached" not in capsys.readouterr().err


def test_help_names_the_model_of_the_config_in_effect(user_cache, capsys, monkeypatch):
    Path("mine.toml").write_text('[model]\nname = "htdemucs_ft"\n')
    monkeypatch.setenv("KARAOKE_CONFIG", "mine.toml")
    with pytest.raises(SystemExit):
        main(["separate", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default from config: htdemucs_ft)" in out
    assert "- vocals instead (no instrumental)" in out


def test_help_reads_a_config_typed_before_it(user_cache, capsys):
    Path("other.toml").write_text('[model]\nname = "mdx_extra"\n')
    with pytest.raises(SystemExit):
        main(["separate", "--config", "other.toml", "--help"])
    assert "(default from config: mdx_extra)" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("name", ["htdemucs", "htdemucs_ft", "mdx_extra", "someone/htdemucs_6s"])
def test_the_weights_check_looks_where_demucs_loads_from(name):
    """The torch-free check names the hub repository as ``demucs.hf`` does."""
    from demucs.hf import DEFAULT_NAMESPACE, hf_repo_name

    from separation.model.hub import hub_location

    namespace, short = name.split("/", 1) if "/" in name else (DEFAULT_NAMESPACE, name)
    repo_id, bag_file = hub_location(name)
    assert repo_id == f"{namespace}/{hf_repo_name(short)}"
    assert bag_file == f"{short}.yaml"


def test_the_weights_check_wants_the_bag_and_every_model_in_it(tmp_path, monkeypatch):
    import huggingface_hub.constants

    from bot.cli.separate_prep import weights_problem
    from bot.settings.model import ModelSettings

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    repo = tmp_path / "models--adefossez--HTDemucs"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "htdemucs.yaml").write_text("models: ['955717e8']\n")
    model = ModelSettings(name="htdemucs")
    assert "models download htdemucs" in (weights_problem(model) or "")
    (snapshot / "955717e8.safetensors").write_bytes(b"")
    assert weights_problem(model) is None


def test_no_cache_is_refused_for_a_fleet(user_cache, capsys, clip_path):
    Path("fleet.toml").write_text(
        '[backend]\nkind = "distributed"\n'
        '[database]\nurl = "postgresql+asyncpg://bot@127.0.0.1:9/k"\n'
    )
    assert main(["--config", "fleet.toml", "separate", str(clip_path), "--no-cache"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("karaoke-bot: error: argument --no-cache: ")
    assert list(Path.cwd().iterdir()) == [Path.cwd() / "fleet.toml"]


def test_pool_internals_are_shown_with_v(user_cache, capsys, clip_path, model_repo):
    argv = ["separate", str(clip_path), "--model", "tiny", "--model-repo", str(model_repo)]
    assert main([*argv, "-o", "out", "--no-cache", "-v"]) == 0
    assert "job slot" in capsys.readouterr().err


def test_a_missing_model_folder_is_refused_before_anything_is_created(
    user_cache, capsys, clip_path
):
    argv = ["separate", str(clip_path), "--model", "tiny", "--model-repo", "nowhere", "-o", "out"]
    assert main(argv) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line == (
        "karaoke-bot: error: model folder nowhere (--model-repo / model.repo) does not exist "
        "or is not a folder"
    )
    assert list(Path.cwd().iterdir()) == [] and not user_cache.exists()


def test_the_help_names_the_same_built_in_model_as_the_settings():
    """``separate --help`` reads the config without pydantic; its fallback must agree."""
    from bot.cli.separate_prep import BUILT_IN_MODEL
    from bot.settings.model import ModelSettings

    assert ModelSettings().name == BUILT_IN_MODEL
