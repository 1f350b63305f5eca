"""The typed settings: the example config documents everything, typos are errors."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from bot.settings import ConfigError, Settings, load_settings

EXAMPLE = Path(__file__).resolve().parents[1] / "config.example.toml"


def _leaf_settings(model: type[BaseModel], prefix: tuple[str, ...] = ()):
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _leaf_settings(annotation, (*prefix, name))
        else:
            yield (*prefix, name), field


def _commented_keys(text: str) -> set[str]:
    """Keys shown commented out (optional settings without a default value)."""
    keys = set()
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# ") and " = " in stripped:
            keys.add(stripped[2:].split(" = ")[0].strip())
    return keys


def test_example_config_documents_every_setting_with_its_default():
    text = EXAMPLE.read_text(encoding="utf-8")
    example = tomllib.loads(text)
    defaults = Settings()
    commented = _commented_keys(text)
    for path, field in _leaf_settings(Settings):
        section = example
        for part in path[:-1]:
            section = section.get(part, {})
        default = defaults
        for part in path:
            default = getattr(default, part)
        if path[-1] in section:
            value = section[path[-1]]
            assert type(default)(value) == default if default is not None else True, path
        else:
            # Declared unset (None), whatever a validator makes of it (a platform's
            # ``enabled`` follows its token): shown commented out.
            declared = field.get_default(call_default_factory=True)
            assert declared is None and path[-1] in commented, f"{'.'.join(path)} undocumented"


def test_example_config_loads():
    expected = Settings.model_validate({"general": {"data_dir": EXAMPLE.parent / "data"}})
    assert load_settings(EXAMPLE) == expected


def test_unknown_keys_are_errors(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[audio]\nmax_duraton_seconds = 10\n")
    with pytest.raises(ConfigError, match=r"unknown setting 'audio.max_duraton_seconds'"):
        load_settings(config)


def test_unknown_sections_are_errors(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[modle]\nname = 'x'\n")
    with pytest.raises(ConfigError, match="unknown setting 'modle'"):
        load_settings(config)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("[model]\ndevice = 'gpu'\n", "model.device"),
        ("[model]\noverlap = 1.5\n", "model.overlap"),
        ("[output]\nformat = 'aac'\n", "output.format"),
        ("[audio]\nmax_duration_seconds = -1\n", "audio.max_duration_seconds"),
        ("[audio]\nffmpeg_memory_mb = 16\n", "audio.ffmpeg_memory_mb"),
        ("[audio]\nprobe_timeout_seconds = 0\n", "audio.probe_timeout_seconds"),
        ("this is not toml", "not valid TOML"),
    ],
)
def test_invalid_values_name_the_setting(tmp_path, text, fragment):
    config = tmp_path / "config.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        load_settings(config)


@pytest.mark.parametrize(
    "cache_dir, clash",
    [("data/tmp", "tmp"), ("data/tmp/cache", "tmp"), ("data/uploads", "uploads"), (".", "data")],
)
def test_a_cache_folder_that_another_sweep_would_empty_is_refused(
    tmp_path, monkeypatch, cache_dir, clash
):
    """Job folders, uploads and cache entries are each swept by their own rule."""
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "config.toml"
    config.write_text(f"[general]\ndata_dir = 'data'\n[pool]\ncache_dir = '{cache_dir}'\n")
    with pytest.raises(ConfigError, match=rf"{clash}.*must not (overlap|contain)"):
        load_settings(config)
    config.write_text("[general]\ndata_dir = 'data'\n[pool]\ncache_dir = 'elsewhere'\n")
    assert load_settings(config).pool.cache_dir == tmp_path / "elsewhere"


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml")


def test_environment_overrides(tmp_path):
    settings = load_settings(None, {"KARAOKE_DATA_DIR": str(tmp_path), "KARAOKE_DEVICE": "cpu"})
    assert settings.general.data_dir == tmp_path
    assert settings.model.device == "cpu"


def test_secrets_have_environment_overrides():
    settings = load_settings(
        None,
        {
            "KARAOKE_TELEGRAM_WEBHOOK_SECRET": "hook-secret-1234",
            "KARAOKE_DATABASE_URL": "postgresql+asyncpg://bot:pw-5678@db/karaoke",
        },
    )
    assert settings.telegram.webhook_secret.get_secret_value() == "hook-secret-1234"
    assert settings.database_url == "postgresql+asyncpg://bot:pw-5678@db/karaoke"


def test_relative_paths_are_relative_to_the_config_file(tmp_path, monkeypatch):
    """Not to wherever the bot was started from (systemd, cron, Docker)."""
    folder = tmp_path / "etc"
    folder.mkdir()
    config = folder / "config.toml"
    config.write_text(
        "[general]\ndata_dir = 'data'\nffmpeg_path = 'bin/ffmpeg'\n"
        "[model]\nrepo = 'models'\n[pool]\ncache_dir = '../cache'\n"
        "[database]\nurl = 'sqlite+aiosqlite:///db/karaoke.db'\n"
    )
    monkeypatch.chdir(tmp_path)
    settings = load_settings(Path("etc/config.toml"), {})
    assert settings.general.data_dir == folder / "data"
    assert settings.model.repo == folder / "models"
    assert settings.pool.cache_dir == folder / "../cache"
    assert settings.general.ffmpeg_path == str(folder / "bin/ffmpeg")
    assert settings.database_url == f"sqlite+aiosqlite:///{folder}/db/karaoke.db"
    # Absolute paths, bare command names and the environment's values stay as given.
    config.write_text(f"[general]\ndata_dir = '{tmp_path}/abs'\nffmpeg_path = 'ffmpeg'\n")
    settings = load_settings(config, {})
    assert settings.general.data_dir == tmp_path / "abs"
    assert settings.general.ffmpeg_path == "ffmpeg"
    settings = load_settings(config, {"KARAOKE_DATA_DIR": "here"})
    assert settings.general.data_dir == Path("here")
    # Without a config file, relative means the working directory, as always.
    assert load_settings(None, {}).general.data_dir == Path("data")


def test_an_old_quota_cli_section_says_it_was_removed(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[quota.cli]\nsongs_per_day = 1000\n")
    with pytest.raises(ConfigError, match=r"'quota.cli'.*removed.*no quota"):
        load_settings(config)
    assert "cli" not in Settings().quota.model_dump()


def test_an_old_results_ttl_says_which_setting_took_its_place(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[storage]\nresults_ttl_hours = 48.0\n")
    with pytest.raises(
        ConfigError, match=r"'storage.results_ttl_hours'.*removed.*pool.cache_max_age_hours"
    ):
        load_settings(config)


def test_settings_objects_do_not_share_state():
    first, second = load_settings(None, {}), load_settings(None, {})
    first.model.shifts = 3
    assert second.model.shifts == 0


PG = "postgresql+asyncpg://karaoke@db.example/karaoke"


def test_the_distributed_backend_needs_postgresql(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[backend]\nkind = "distributed"\n')
    with pytest.raises(ConfigError, match=r"needs a PostgreSQL database.url"):
        load_settings(config, {})
    settings = load_settings(config, {"KARAOKE_DATABASE_URL": PG})
    assert settings.backend.kind == "distributed"


def test_a_missing_distributed_extra_is_one_line_naming_the_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "procrastinate", None)
    config = tmp_path / "config.toml"
    config.write_text('[backend]\nkind = "distributed"\n')
    with pytest.raises(ConfigError, match=r"needs procrastinate.*karaoke-bot\[distributed\]"):
        load_settings(config, {"KARAOKE_DATABASE_URL": PG})
    config.write_text('[backend]\nkind = "local"\n')  # the default never needs it
    assert load_settings(config, {}).backend.kind == "local"


def test_s3_credentials_come_in_pairs_and_from_the_environment(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[blobs]\nkind = "s3"\nendpoint_url = "http://s3:9000"\nbucket = "k"\n')
    with pytest.raises(ConfigError, match=r"both S3 credentials"):
        load_settings(config, {"KARAOKE_S3_ACCESS_KEY_ID": "AKIAEXAMPLE"})
    settings = load_settings(
        config,
        {"KARAOKE_S3_ACCESS_KEY_ID": "AKIAEXAMPLE", "KARAOKE_S3_SECRET_ACCESS_KEY": "s3cr3t!"},
    )
    assert settings.blobs.secret_access_key is not None
    assert "s3cr3t!" not in repr(settings)
    config.write_text('[blobs]\nkind = "s3"\n')
    with pytest.raises(ConfigError, match=r"endpoint_url and blobs.bucket"):
        load_settings(config, {})


@pytest.mark.parametrize(
    ("config", "environ", "telegram", "discord"),
    [
        ("", {}, False, False),
        ("", {"KARAOKE_TELEGRAM_TOKEN": "1:x"}, True, False),
        ("", {"KARAOKE_DISCORD_TOKEN": "MTIz"}, False, True),
        ("[telegram]\nenabled = false\n", {"KARAOKE_TELEGRAM_TOKEN": "1:x"}, False, False),
        ("[telegram]\nenabled = true\n", {}, True, False),
        ('[discord]\ntoken = "MTIz"\n', {}, False, True),
    ],
)
def test_a_platform_is_enabled_by_its_token_unless_the_config_says_no(
    tmp_path, config, environ, telegram, discord
):
    path = tmp_path / "config.toml"
    path.write_text(config)
    settings = load_settings(path if config else None, environ)
    assert (settings.telegram.enabled, settings.discord.enabled) == (telegram, discord)


def test_no_config_at_all_is_a_whole_set_of_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None, {"KARAOKE_TELEGRAM_TOKEN": "1:x"})
    assert settings.general.data_dir == Path("data")  # ./data where the bot is started
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.backend.kind == "local"
    assert settings.model.name == "htdemucs" and settings.model.allow_download
    assert not (tmp_path / "data").exists()  # loading settings creates nothing


def test_a_missing_config_file_says_what_to_do_next(tmp_path):
    with pytest.raises(ConfigError, match=r"copy config\.example\.toml to config\.toml"):
        load_settings(tmp_path / "config.toml")
