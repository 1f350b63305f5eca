"""``karaoke-bot check`` through the real entry point, on real folders and databases."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import huggingface_hub.constants
import pytest
import torch
from pydantic import BaseModel, SecretStr

from bot.cli.check import MASK, mask_url_password, masked_settings_lines
from bot.cli.main import main
from bot.settings import Settings
from storage import db, migrate

FAKE_TOKEN = "123456789:AAFakeTokenForTestsOnly_x9Zq"


@pytest.fixture
def empty_hub(clean_env, tmp_path):
    """A HuggingFace cache with nothing in it, whatever this machine has downloaded."""
    clean_env.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))


def _platforms() -> list[str]:
    fields = Settings.model_fields
    return [
        name
        for name, field in fields.items()
        if isinstance(field.annotation, type)
        and issubclass(field.annotation, BaseModel)
        and {"enabled", "token"} <= set(field.annotation.model_fields)
    ]


def _write_config(path: Path, sections: dict[str, dict[str, object]]) -> Path:
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            if isinstance(value, bool):
                lines.append(f"{key} = {'true' if value else 'false'}")
            elif isinstance(value, str | Path):
                lines.append(f'{key} = "{value}"')
            else:
                lines.append(f"{key} = {value}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _ready_sections(tmp_path: Path, model_repo: Path) -> dict[str, dict[str, object]]:
    """A config that should pass: tiny local model, CPU, a fake token per platform."""
    sections: dict[str, dict[str, object]] = {
        "general": {"data_dir": tmp_path / "data"},
        "model": {"name": "tiny", "repo": model_repo, "device": "cpu"},
    }
    for platform in _platforms():
        values: dict[str, object] = {"enabled": True, "token": FAKE_TOKEN}
        section_fields = getattr(Settings.model_fields[platform].annotation, "model_fields", {})
        if "webhook_url" in section_fields:  # a token often ends up in a webhook path
            values["webhook_url"] = f"https://bot.example.org/hook/{FAKE_TOKEN}"
        sections[platform] = values
    return sections


def _check(config: Path, capsys) -> tuple[int, list[str]]:
    code = main(["--config", str(config), "check"])
    return code, capsys.readouterr().out.splitlines()


def _findings(lines: list[str]) -> list[str]:
    return [line for line in lines if line.split(" ", 1)[0] in ("OK", "WARN", "FATAL")]


def test_a_good_config_is_ready_and_never_prints_the_token(tmp_path, empty_hub, model_repo, capsys):
    config = _write_config(tmp_path / "config.toml", _ready_sections(tmp_path, model_repo))
    code, lines = _check(config, capsys)
    output = "\n".join(lines)
    assert code == 0, output
    assert FAKE_TOKEN not in output
    assert FAKE_TOKEN.split(":")[1] not in output
    assert lines[-1].startswith("ready to run")
    assert not [line for line in _findings(lines) if line.startswith("FATAL")]
    assert any(line.startswith("OK    model tiny: weights found") for line in lines)
    assert any(line.startswith("OK    device: cpu (") for line in lines)
    assert any(line.startswith("OK    ffmpeg: ") for line in lines)
    assert any(line.startswith("OK    header reader: PyAV ") for line in lines)
    if _platforms():
        assert f'token = "{MASK}"' in lines
    assert not (tmp_path / "data").exists()  # a check creates nothing


def test_this_machine_without_weights_gets_a_clear_verdict(tmp_path, empty_hub, capsys):
    # Downloads switched off (by default the first start fetches them: a WARN, below).
    config = _write_config(
        tmp_path / "config.toml",
        {"general": {"data_dir": tmp_path}, "model": {"allow_download": False}},
    )
    code, lines = _check(config, capsys)
    assert code == 1
    fatal = [line for line in _findings(lines) if line.startswith("FATAL")]
    assert any(
        line.startswith("FATAL model htdemucs: weights not found")
        and "karaoke-bot models download htdemucs" in line
        for line in fatal
    )
    assert lines[-1] == f"NOT READY: {len(fatal)} problem(s) must be fixed before the bot can run"
    assert any(line.startswith("OK    data dir ") and "writable" in line for line in lines)
    assert not list(tmp_path.glob(".karaoke-check-*"))  # the probe file is removed


def test_an_enabled_platform_without_token_is_fatal(tmp_path, empty_hub, model_repo, capsys):
    platforms = _platforms()
    assert set(platforms) == {"telegram", "discord"}
    sections = _ready_sections(tmp_path, model_repo)
    del sections[platforms[0]]["token"]
    sections[platforms[0]].pop("webhook_url", None)
    config = _write_config(tmp_path / "config.toml", sections)
    code, lines = _check(config, capsys)
    assert code == 1
    assert f"FATAL {platforms[0]}: enabled but no token" in "\n".join(lines)


def test_a_data_dir_below_a_regular_file_is_fatal(tmp_path, empty_hub, model_repo, capsys):
    # Tests run as root, for whom chmod does not stop a write; a file in the path does.
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    sections = _ready_sections(tmp_path, model_repo)
    sections["general"]["data_dir"] = blocker / "data"
    code, lines = _check(_write_config(tmp_path / "config.toml", sections), capsys)
    assert code == 1
    assert f"FATAL data dir {blocker / 'data'}: {blocker} is not a folder" in lines
    assert lines[-1].startswith("NOT READY: 1 problem(s)")


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        # Relative to the config file's folder (tmp_path), not the working directory.
        ({"repo": "missing-models"}, "FATAL model htdemucs: model folder {tmp}/missing-models"),
        ({"allow_download": True}, "WARN  model htdemucs: weights not downloaded yet"),
        ({"device": "cuda:7"}, "FATAL device: device 'cuda:7'"),
    ],
)
def test_model_and_device_problems(tmp_path, empty_hub, capsys, model, expected):
    if "device" in model and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    config = _write_config(
        tmp_path / "config.toml", {"general": {"data_dir": tmp_path}, "model": model}
    )
    _, lines = _check(config, capsys)
    expected = expected.format(tmp=tmp_path)
    assert any(line.startswith(expected) for line in lines), lines


def test_a_missing_ffmpeg_is_fatal(tmp_path, empty_hub, capsys):
    config = _write_config(
        tmp_path / "config.toml", {"general": {"ffmpeg_path": tmp_path / "no-ffmpeg"}}
    )
    code, lines = _check(config, capsys)
    assert code == 1
    expected = "FATAL ffmpeg: ffmpeg not found at configured path"
    assert any(line.startswith(expected) for line in lines)


def test_a_header_reader_python_without_pyav_is_fatal(tmp_path, empty_hub, capsys):
    """Every upload's header is read with PyAV (``separation.audio.probe``)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    audio = {"header_reader_python": venv / "bin" / "python"}
    code, lines = _check(_write_config(tmp_path / "config.toml", {"audio": audio}), capsys)
    assert code == 1
    expected = f"FATAL header reader: {venv / 'bin' / 'python'} cannot import PyAV"
    assert any(line.startswith(expected) for line in lines), lines


def _sqlite_config(tmp_path: Path, database: Path) -> Path:
    return _write_config(
        tmp_path / "config.toml",
        {"general": {"data_dir": tmp_path}, "database": {"url": f"sqlite+aiosqlite:///{database}"}},
    )


def test_database_states(tmp_path, empty_hub, capsys):
    database = tmp_path / "karaoke.db"
    config = _sqlite_config(tmp_path, database)
    _, lines = _check(config, capsys)
    assert any(line.endswith("not created yet: created and migrated at start") for line in lines)
    assert not database.exists()

    sqlite3.connect(database).close()  # a file with no schema at all
    _, lines = _check(config, capsys)
    assert any(line.endswith("empty: the schema is created at start") for line in lines)

    async def upgrade() -> None:
        opened = db.open_database(f"sqlite+aiosqlite:///{database}")
        try:
            await migrate.upgrade(opened)
        finally:
            await opened.close()

    asyncio.run(upgrade())
    _, lines = _check(config, capsys)
    head = migrate.head_revision()
    assert any(line.endswith(f"schema up to date (revision {head})") for line in lines)

    with sqlite3.connect(database) as connection:  # as if a newer version had migrated it
        connection.execute("UPDATE alembic_version SET version_num = 'f00dfeed'")
    code, lines = _check(config, capsys)
    assert code == 1
    assert any(
        line.startswith("FATAL database") and "f00dfeed, unknown to this version" in line
        for line in lines
    )


def test_a_database_that_does_not_answer_is_fatal_and_its_password_hidden(
    tmp_path, empty_hub, capsys
):
    pytest.importorskip("asyncpg", reason="the PostgreSQL driver is an optional extra")
    password = "hunter2-very-secret"
    config = _write_config(
        tmp_path / "config.toml",
        {
            "general": {"data_dir": tmp_path},
            # Port 9 on loopback: nothing listens, the connection is refused at once.
            "database": {"url": f"postgresql+asyncpg://karaoke:{password}@127.0.0.1:9/karaoke"},
        },
    )
    code, lines = _check(config, capsys)
    output = "\n".join(lines)
    assert code == 1
    assert password not in output
    assert f"postgresql+asyncpg://karaoke:{MASK}@127.0.0.1:9/karaoke" in output
    assert any(line.startswith("FATAL database ") for line in lines)


def test_secrets_from_the_environment_are_masked(tmp_path, empty_hub, capsys, clean_env):
    """KARAOKE_DATABASE_URL (with its password) and KARAOKE_TELEGRAM_WEBHOOK_SECRET."""
    pytest.importorskip("asyncpg", reason="the PostgreSQL driver is an optional extra")
    password, secret = "db-pass-from-env-77", "webhook-secret-from-env-99"
    clean_env.setenv("KARAOKE_DATABASE_URL", f"postgresql+asyncpg://bot:{password}@127.0.0.1:9/k")
    clean_env.setenv("KARAOKE_TELEGRAM_WEBHOOK_SECRET", secret)
    config = _write_config(tmp_path / "config.toml", {"general": {"data_dir": tmp_path}})
    _, lines = _check(config, capsys)
    output = "\n".join(lines)
    assert password not in output and secret not in output
    assert f'url = "postgresql+asyncpg://bot:{MASK}@127.0.0.1:9/k"' in lines
    assert f'webhook_secret = "{MASK}"' in lines


class _Inner(BaseModel):
    api_token: str | None = "plain-but-named-like-a-token"
    dsn: str = "redis://user:s3cretpass@127.0.0.1:6379/0"


class _Outer(BaseModel):
    token: SecretStr | None = SecretStr("typed-secret-value")
    admin_password: str = "named-password"
    client_secret: SecretStr | None = None
    name: str = "visible"
    inner: _Inner = _Inner()


def test_masking_is_generic():
    text = "\n".join(masked_settings_lines(_Outer()))
    for secret in ("typed-secret-value", "named-password", "plain-but-named", "s3cretpass"):
        assert secret not in text
    assert 'name = "visible"' in text
    assert "client_secret = (not set)" in text
    assert "[inner]" in text
    assert f'dsn = "redis://user:{MASK}@127.0.0.1:6379/0"' in text


def test_numbers_named_like_secrets_are_shown():
    from bot.settings import Settings

    text = "\n".join(masked_settings_lines(Settings()))
    assert "interaction_token_seconds = 900.0" in text


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+asyncpg://u:p%40ss@h:5432/d", f"postgresql+asyncpg://u:{MASK}@h:5432/d"),
        ("sqlite+aiosqlite:////data/karaoke.db", "sqlite+aiosqlite:////data/karaoke.db"),
        ("postgresql://u@h/d", "postgresql://u@h/d"),
        ("not a url", "not a url"),
    ],
)
def test_mask_url_password(url, shown):
    assert mask_url_password(url) == shown


def test_the_cache_is_measured_on_disk_against_its_limit(tmp_path, empty_hub, model_repo, capsys):
    sections = _ready_sections(tmp_path, model_repo)
    sections["pool"] = {"cache_max_bytes": 1_000_000}
    config = _write_config(tmp_path / "config.toml", sections)
    code, lines = _check(config, capsys)
    cache = tmp_path / "data" / "cache"
    assert f"OK    cache {cache}: 0.0 MB on disk of 1.0 MB (pool.cache_max_bytes)" in lines
    entry = cache / "ab" / ("ab" * 32)
    entry.mkdir(parents=True)
    (entry / "vocals.stem.flac").write_bytes(os.urandom(1_500_000))  # stems count too
    code, lines = _check(config, capsys)
    assert code == 0  # a warning: the bot evicts at start
    warning = next(line for line in lines if line.startswith(f"WARN  cache {cache}: "))
    assert "1.5 MB on disk of 1.0 MB (pool.cache_max_bytes): over its limit" in warning


def test_missing_weights_with_the_hub_switched_off_are_fatal(
    tmp_path, empty_hub, capsys, monkeypatch
):
    """Downloads allowed but ``HF_HUB_OFFLINE`` (the Docker image): nothing can fetch them."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    config = _write_config(
        tmp_path / "config.toml",
        {"general": {"data_dir": tmp_path}, "model": {"allow_download": True}},
    )
    code, lines = _check(config, capsys)
    assert code == 1
    expected = "FATAL model htdemucs: weights not found in the HuggingFace cache"
    assert any(line.startswith(expected) and "HF_HUB_OFFLINE is set" in line for line in lines)
