"""``models list`` sees the model ``make-random`` just wrote (issue 23, point 10).

``make-random NAME --repo DIR`` is how a newcomer tries the pipeline without weights;
``models list`` refused ``--repo`` and saw only the configured folder, so the model just
made was missing from the list unless the config was edited first.
"""

from __future__ import annotations

from pathlib import Path

import huggingface_hub.constants
import pytest

from bot.cli.main import main


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty HuggingFace cache that is never filled: no model is downloaded."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KARAOKE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("KARAOKE_CONFIG", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return tmp_path


def _listing(capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """Model name -> the rest of its line."""
    lines = capsys.readouterr().out.splitlines()
    return {line.split()[0]: line.split(maxsplit=1)[1] for line in lines}


def test_models_list_sees_a_random_model_in_repo_beside_the_configured_folder(offline, capsys):
    configured, made = offline / "configured", offline / "made"
    assert main(["models", "make-random", "mine", "--repo", str(configured)]) == 0
    assert main(["models", "make-random", "demo", "--repo", str(made)]) == 0
    capsys.readouterr()
    (offline / "config.toml").write_text(f"[model]\nrepo = '{configured}'\n")
    assert main(["models", "list", "--repo", str(made)]) == 0
    listing = _listing(capsys)
    assert listing["demo"].split() == ["available", "from", str(made)]
    assert listing["mine"].split() == ["available", "from", str(configured)]
    assert listing["htdemucs"].startswith("not downloaded")


def test_models_list_of_a_folder_that_is_not_there_is_one_line(offline, capsys):
    assert main(["models", "list", "--repo", "nowhere"]) == 2
    assert capsys.readouterr().err == (
        "karaoke-bot: error: argument --repo: nowhere is not a folder "
        "(make one with models make-random)\n"
    )
