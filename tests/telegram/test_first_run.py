"""The first five minutes (issue 23): ``karaoke-bot run`` with nothing but a token, the
default model fetched once on first use from a hub (a fake one on 127.0.0.1), and a start
that is refused leaves the folder it ran in exactly as it was."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import huggingface_hub.constants
import pytest

from separation.errors import ModelNotAvailableError
from separation.model.loading import _hf_repo_id, ensure_weights, is_available_locally
from separation.model.random_models import (
    TINY_HTDEMUCS_KWARGS,
    build_htdemucs,
    save_hub_cache_model,
)
from tests.support.fake_bot_api import TOKEN, FakeBotApi
from tests.support.fake_hub import FakeHub

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def hub(tmp_path_factory):
    """A fake hub serving a tiny random model under the default model's name."""
    snapshot = save_hub_cache_model(
        tmp_path_factory.mktemp("hub-files"), "htdemucs", [build_htdemucs(TINY_HTDEMUCS_KWARGS)]
    )
    server = FakeHub(_hf_repo_id("htdemucs")[0], snapshot).start()
    yield server
    server.stop()


@pytest.fixture
def empty_cache(monkeypatch, tmp_path):
    """An empty HuggingFace cache, the hub switched on, whatever this machine has."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    return tmp_path / "hf-cache"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No developer ``KARAOKE_*``/``HF_*`` variables; an empty HuggingFace home."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("KARAOKE_", "HF_", "HUGGINGFACE_"))
    }
    env.update(PYTHONPATH=str(PROJECT), HF_HOME=str(tmp_path / "hf-home"), **extra)
    return env


def _karaoke_bot(folder: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli.main", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("karaoke-bot: error: ")]


def _point_at(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    """What HF_ENDPOINT does when set before huggingface_hub is imported."""
    constants = huggingface_hub.constants
    monkeypatch.setattr(constants, "ENDPOINT", hub.endpoint)
    template = hub.endpoint + "/{repo_id}/resolve/{revision}/{filename}"
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)


def test_the_first_use_downloads_once_then_never_again(hub, empty_cache, monkeypatch):
    _point_at(hub, monkeypatch)
    ensure_weights("htdemucs", None, allow_download=True, progress=False)
    fetched = hub.downloads()
    assert fetched[0] == "htdemucs.yaml" and fetched[1].endswith(".safetensors")
    assert is_available_locally("htdemucs")
    ensure_weights("htdemucs", None, allow_download=True, progress=False)
    assert hub.downloads() == fetched  # the second start never touches the network


@pytest.mark.parametrize(
    ("allow", "offline", "why"),
    [(False, False, "model.allow_download = false"), (True, True, "HF_HUB_OFFLINE is set")],
)
def test_a_disabled_download_is_the_one_line_explanation(
    hub, empty_cache, monkeypatch, allow, offline, why
):
    _point_at(hub, monkeypatch)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", offline)
    with pytest.raises(ModelNotAvailableError) as raised:
        ensure_weights("htdemucs", None, allow_download=allow, progress=False)
    assert why in str(raised.value)
    assert "karaoke-bot models download htdemucs" in str(raised.value)
    assert hub.downloads() == []


def test_run_without_a_token_names_the_variables_and_leaves_nothing(tmp_path):
    folder = tmp_path / "fresh"
    folder.mkdir()
    result = _karaoke_bot(folder, _env(tmp_path), "run")
    assert result.returncode == 2
    [line] = _error_lines(result.stderr)
    assert "KARAOKE_TELEGRAM_TOKEN" in line and "KARAOKE_DISCORD_TOKEN" in line
    assert list(folder.iterdir()) == []


def test_an_enabled_platform_without_token_creates_no_database(tmp_path):
    folder = tmp_path / "fresh"
    folder.mkdir()
    (folder / "config.toml").write_text("[telegram]\nenabled = true\n")
    result = _karaoke_bot(folder, _env(tmp_path), "run")
    assert result.returncode == 2
    assert _error_lines(result.stderr) == [
        "karaoke-bot: error: Telegram is enabled but no token is set: "
        "set KARAOKE_TELEGRAM_TOKEN or telegram.token"
    ]
    assert [p.name for p in folder.iterdir()] == ["config.toml"]  # no data/, no karaoke.db*


def test_a_missing_config_file_says_the_next_step(tmp_path):
    result = _karaoke_bot(tmp_path, _env(tmp_path), "run", "--config", "config.toml")
    assert result.returncode == 2
    [line] = _error_lines(result.stderr)
    assert line.startswith("karaoke-bot: error: config file not found: config.toml (")
    assert "copy config.example.toml to config.toml" in line


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("", "weights for model 'htdemucs' are not available"),
        ('[model]\nname = "nosuch"\nrepo = "."\n', "model 'nosuch' not found in "),
    ],
)
def test_run_with_missing_weights_leaves_nothing_and_no_pool_log(tmp_path, config, expected):
    folder = tmp_path / "fresh"
    folder.mkdir()
    if config:
        (folder / "config.toml").write_text(config)
    env = _env(tmp_path, KARAOKE_TELEGRAM_TOKEN=TOKEN, HF_HUB_OFFLINE="1")
    result = _karaoke_bot(folder, env, "run")
    assert result.returncode == 2
    [line] = _error_lines(result.stderr)
    assert expected in line
    assert "HF_HUB_OFFLINE is set" in line or config
    assert "pool stopped" not in result.stderr
    assert [p.name for p in folder.iterdir()] == (["config.toml"] if config else [])


async def _serves_until_sigterm(
    folder: Path, env: dict[str, str], api: FakeBotApi
) -> tuple[int | None, str]:
    """``karaoke-bot run`` in ``folder`` until it answers Telegram, then SIGTERM."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli.main", "run", cwd=folder, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await api.wait_for(lambda a: a.calls_to("setMyCommands"), within=90)
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
    return process.returncode, stderr.decode()


def _bot_api_config(api: FakeBotApi) -> str:
    """No "enabled", no [general]: only where the fake Bot API listens."""
    return f'[telegram]\nbase_url = "{api.base_url}"\nbase_file_url = "{api.base_file_url}"\n'


async def test_a_token_is_a_whole_deployment_and_the_model_comes_on_first_run(hub, tmp_path):
    api = FakeBotApi()
    await api.start()
    folder = tmp_path / "fresh"
    folder.mkdir()
    (folder / "config.toml").write_text(_bot_api_config(api))  # no [model]: htdemucs
    env = _env(tmp_path, KARAOKE_TELEGRAM_TOKEN=TOKEN, HF_ENDPOINT=hub.endpoint)
    try:
        code, stderr = await _serves_until_sigterm(folder, env, api)
    finally:
        await api.stop()
    assert code == 0, stderr
    assert hub.downloads()[0] == "htdemucs.yaml"
    assert (folder / "data" / "karaoke.db").is_file()  # the default data folder: ./data
    assert TOKEN not in stderr


async def test_the_bot_runs_on_the_random_model_as_the_docs_show(tmp_path):
    """docs/pages/deploying/install.md: make-random, then model.name/model.repo."""
    api = FakeBotApi()
    await api.start()
    folder = tmp_path / "fresh"
    folder.mkdir()
    env = _env(tmp_path, KARAOKE_TELEGRAM_TOKEN=TOKEN, HF_HUB_OFFLINE="1")
    made = _karaoke_bot(folder, env, "models", "make-random", "demo", "--repo", "models/")
    assert made.returncode == 0, made.stderr
    model = '[model]\nname = "demo"\nrepo = "models/"\n'
    (folder / "config.toml").write_text(model + _bot_api_config(api))
    try:
        code, stderr = await _serves_until_sigterm(folder, env, api)
    finally:
        await api.stop()
    assert code == 0, stderr
    assert "loaded model demo" in stderr
