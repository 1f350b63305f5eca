"""The one typed place for karaoke-bot's configuration.

Everything an operator can set lives here, loaded from a TOML file (see
``config.example.toml``) with environment overrides for secrets, so tokens never have
to be written to a file. Unknown keys are an error: a typo such as ``max_duraton`` must
not be silently ignored and leave the operator wondering why a limit does not apply.

``separation/`` and ``storage/`` do not import this module; the application wiring
(``bot.app`` / ``bot.cli``) hands them the plain values they need.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator


class ConfigError(ValueError):
    """The configuration file is missing, unreadable or invalid."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


OutputFormat = Literal["mp3", "opus", "flac", "wav"]
StemMode = Literal["two", "four"]
Platform = Literal["telegram", "discord", "cli"]


class GeneralSettings(_Section):
    data_dir: Path = Path("data")
    """Database, uploads, results, cache and temporary job folders live below this."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = False
    ffmpeg_path: str | None = None
    """An ffmpeg binary; default: the one on PATH, else the one bundled by imageio-ffmpeg."""


class AudioSettings(_Section):
    max_duration_seconds: float = Field(default=900.0, gt=0)
    max_input_bytes: int = Field(default=200 * 1024 * 1024, gt=0)


class ModelSettings(_Section):
    name: str = "htdemucs"
    repo: Path | None = None
    """A local model folder in Demucs' --repo layout (SIG.th files and NAME.yaml bags)."""
    device: str = "auto"
    cpu_threads: int = Field(default=0, ge=0)
    """Threads torch may use on CPU; 0 keeps torch's default (one per core)."""
    shifts: int = Field(default=0, ge=0, le=20)
    overlap: float = Field(default=0.25, ge=0.0, lt=1.0)
    allow_download: bool = False
    """Fetch missing weights from the HuggingFace hub at start (needs internet)."""

    @field_validator("device")
    @classmethod
    def _check_device(cls, value: str) -> str:
        if value in ("auto", "cpu", "cuda") or (value.startswith("cuda:") and value[5:].isdigit()):
            return value
        raise ValueError("device must be auto, cpu, cuda or cuda:N")


class OutputSettings(_Section):
    format: OutputFormat = "mp3"
    stems: StemMode = "two"
    mp3_bitrate: int = Field(default=320, ge=32, le=320)
    min_mp3_bitrate: int = Field(default=96, ge=32, le=320)
    """Below this bitrate a result is not worth sending; the user is told it cannot fit."""


class DatabaseSettings(_Section):
    url: str | None = None
    """Any async SQLAlchemy URL; default sqlite+aiosqlite:///<data_dir>/karaoke.db."""
    busy_timeout_seconds: float = Field(default=30.0, gt=0)
    """How long a SQLite writer waits for another one before giving up."""


class StorageSettings(_Section):
    results_ttl_hours: float = Field(default=24.0, gt=0)
    cleanup_interval_minutes: float = Field(default=30.0, gt=0)
    cache_hits_are_free: bool = True


class QuotaLimitsSettings(_Section):
    songs_per_day: int = Field(default=10, ge=0)
    audio_minutes_per_day: float = Field(default=60.0, ge=0)
    max_song_minutes: float = Field(default=15.0, gt=0)
    max_concurrent_jobs: int = Field(default=2, ge=1)


class QuotaSettings(_Section):
    telegram: QuotaLimitsSettings = QuotaLimitsSettings()
    discord: QuotaLimitsSettings = QuotaLimitsSettings()
    cli: QuotaLimitsSettings = QuotaLimitsSettings(songs_per_day=1000, audio_minutes_per_day=6000)

    def for_platform(self, platform: Platform) -> QuotaLimitsSettings:
        return getattr(self, platform)


class Settings(_Section):
    general: GeneralSettings = GeneralSettings()
    audio: AudioSettings = AudioSettings()
    model: ModelSettings = ModelSettings()
    output: OutputSettings = OutputSettings()
    database: DatabaseSettings = DatabaseSettings()
    storage: StorageSettings = StorageSettings()
    quota: QuotaSettings = QuotaSettings()

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite+aiosqlite:///{self.general.data_dir.resolve() / 'karaoke.db'}"

    @property
    def tmp_dir(self) -> Path:
        return self.general.data_dir / "tmp"


def load_settings(path: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Read settings from ``path`` (defaults only when None) and apply env overrides.

    Raises:
        ConfigError: the file cannot be read or parsed, or a value is invalid or unknown.
    """
    environ = dict(os.environ if environ is None else environ)
    raw: dict = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file not found: {path}") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    _apply_env_overrides(raw, environ)
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, path)) from None


# Secrets (and a few operational values) may come from the environment, so that a
# container can be configured without writing tokens to a file.
_ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "KARAOKE_DATA_DIR": ("general", "data_dir"),
    "KARAOKE_DEVICE": ("model", "device"),
}


def _apply_env_overrides(raw: dict, environ: dict[str, str]) -> None:
    for variable, (section, key) in _ENV_OVERRIDES.items():
        value = environ.get(variable)
        if value:
            raw.setdefault(section, {})[key] = value


def describe_validation_error(exc: ValidationError, path: Path | None = None) -> str:
    """One line per problem, naming the setting (pydantic's own text is multi-line)."""
    where = f" in {path}" if path else ""
    lines = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"])
        if error["type"] == "extra_forbidden":
            lines.append(f"unknown setting '{location}'{where} (check the spelling)")
        else:
            lines.append(f"invalid setting '{location}'{where}: {error['msg']}")
    return "; ".join(lines)


def secret_value(secret: SecretStr | None) -> str | None:
    """The plain value of an optional secret (kept out of reprs and logs otherwise)."""
    return secret.get_secret_value() if secret is not None else None
