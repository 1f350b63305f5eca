"""Reading ``config.toml``: paths relative to the file, environment overrides, errors
in the operator's words.

Secrets may come from the environment so tokens never have to be written to a file,
and relative paths are relative to the file's folder, wherever the bot is started from
(systemd, cron and Docker rarely start it next to its config).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, SecretStr, ValidationError

from bot.settings.base import ConfigError
from bot.settings.data import DatabaseSettings
from bot.settings.root import Settings


def load_settings(path: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Read settings from ``path`` (defaults only when None) and apply env overrides.

    Raises:
        ConfigError: the file cannot be read or parsed, or a value is invalid or unknown.
    """
    environ = dict(os.environ if environ is None else environ)
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(
                f"config file not found: {path} (copy config.example.toml to config.toml, "
                "see Quick start in the README; without --config the bot runs on defaults "
                "and KARAOKE_TELEGRAM_TOKEN)"
            ) from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
        _resolve_relative_paths(raw, Settings, Path(path).absolute().parent)
    _apply_env_overrides(raw, environ)
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, path)) from None


# Secrets (and a few operational values) may come from the environment, so that a
# container can be configured without writing tokens to a file.
ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "KARAOKE_TELEGRAM_TOKEN": ("telegram", "token"),
    "KARAOKE_DISCORD_TOKEN": ("discord", "token"),
    "KARAOKE_TELEGRAM_WEBHOOK_SECRET": ("telegram", "webhook_secret"),
    "KARAOKE_DATABASE_URL": ("database", "url"),  # it may hold a password
    "KARAOKE_S3_ACCESS_KEY_ID": ("blobs", "access_key_id"),
    "KARAOKE_S3_SECRET_ACCESS_KEY": ("blobs", "secret_access_key"),
    "KARAOKE_DATA_DIR": ("general", "data_dir"),
    "KARAOKE_DEVICE": ("model", "device"),
    # The Docker image turns the health server on through these (see Dockerfile).
    "KARAOKE_HEALTH_ENABLED": ("health", "enabled"),
    "KARAOKE_HEALTH_HOST": ("health", "host"),
    "KARAOKE_HEALTH_PORT": ("health", "port"),
}


def _resolve_relative_paths(raw: dict[str, Any], model: type[BaseModel], base: Path) -> None:
    """Make the file's relative paths relative to ``base``, the file's folder.

    Every ``Path`` setting, an ``ffmpeg_path`` that is a path (not a bare command name
    looked up on PATH) and a SQLite ``database.url`` with a relative file name. Values
    of the wrong type are left for validation to name.
    """
    for name, field in model.model_fields.items():
        value = raw.get(name)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if isinstance(value, dict):
                _resolve_relative_paths(value, annotation, base)
        elif isinstance(value, str) and (annotation is Path or Path in get_args(annotation)):
            raw[name] = str(_against(base, value))
        elif isinstance(value, str) and name == "ffmpeg_path" and "/" in value:
            raw[name] = str(_against(base, value))
        elif isinstance(value, str) and model is DatabaseSettings and name == "url":
            raw[name] = _sqlite_url_against(base, value)


def _against(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _sqlite_url_against(base: Path, text: str) -> str:
    """A relative SQLite path in a config file's URL, made relative to that file."""
    # SQLAlchemy only here: a command that never opens the database (``separate``) does
    # not wait 0.15 s for it at start (issue 26).
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(text)
    except ArgumentError:
        return text  # not a URL at all: the store says so when it opens it
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return text
    if database.startswith("file:") or Path(database).is_absolute():
        return text
    return url.set(database=str(base / database)).render_as_string(hide_password=False)


# The variable that gives each chat platform its token (and so enables it, unless the
# config says ``enabled = false``; ``bot.settings.chat``).
PLATFORM_TOKENS: dict[str, str] = {
    "telegram": "KARAOKE_TELEGRAM_TOKEN",
    "discord": "KARAOKE_DISCORD_TOKEN",
}


def _apply_env_overrides(raw: dict[str, Any], environ: dict[str, str]) -> None:
    for variable, (section, key) in ENV_OVERRIDES.items():
        value = environ.get(variable)
        if value:
            raw.setdefault(section, {})[key] = value


# Settings older versions had: an operator upgrading is told why, not "check the spelling".
_REMOVED_SETTINGS = {
    "quota.cli": "the command line is the operator's own tool and has no quota; "
    "delete the [quota.cli] section",
    "storage.results_ttl_hours": "results are kept by the result cache only; "
    "set pool.cache_max_age_hours instead",
}


def describe_validation_error(exc: ValidationError, path: Path | None = None) -> str:
    """One line per problem, naming the setting (pydantic's own text is multi-line)."""
    where = f" in {path}" if path else ""
    lines = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"])
        if location in _REMOVED_SETTINGS:
            lines.append(f"setting '{location}'{where} was removed: {_REMOVED_SETTINGS[location]}")
        elif error["type"] == "extra_forbidden":
            lines.append(f"unknown setting '{location}'{where} (check the spelling)")
        else:
            lines.append(f"invalid setting '{location}'{where}: {error['msg']}")
    return "; ".join(lines)


def secret_value(secret: SecretStr | None) -> str | None:
    """The plain value of an optional secret (kept out of reprs and logs otherwise)."""
    return secret.get_secret_value() if secret is not None else None


def resolve_config_path(explicit: Path | None) -> Path | None:
    """The config file to load: ``--config``, else ``$KARAOKE_CONFIG``, else ``./config.toml``
    when it exists, else none (built-in defaults and environment overrides only)."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get("KARAOKE_CONFIG")
    if from_env:
        return Path(from_env)
    default = Path("config.toml")
    return default if default.is_file() else None
