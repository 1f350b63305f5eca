"""The one typed place for karaoke-bot's configuration.

Everything an operator can set lives here, loaded from a TOML file (see
``config.example.toml``) with environment overrides for secrets, so tokens never have
to be written to a file. Unknown keys are an error: a typo such as ``max_duraton`` must
not be silently ignored and leave the operator wondering why a limit does not apply.
Relative paths in the file are relative to the file's folder, wherever the bot is
started from (systemd, cron and Docker rarely start it next to its config).

``separation/`` and ``storage/`` do not import this module; the application wiring
(``bot.process.app`` / ``bot.cli.main``) hands them the plain values they need.
"""

from __future__ import annotations

import importlib.util
import os
import tomllib
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from separation.audio.encode import OutputFormat, StemMode
from separation.model.precision import PrecisionSetting
from storage.records import Platform, QuotaLimits


class ConfigError(ValueError):
    """The configuration file is missing, unreadable or invalid."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class GeneralSettings(_Section):
    data_dir: Path = Path("data")
    """Database, uploads, the result cache and temporary job folders live below this."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = False
    ffmpeg_path: str | None = None
    """An ffmpeg binary; default: the one on PATH, else the one bundled by imageio-ffmpeg."""


class AudioSettings(_Section):
    """Limits on what users send (see the README's Privacy and Troubleshooting sections)."""

    max_duration_seconds: float = Field(default=900.0, gt=0)
    """Longest song, by its decoded length (a header may lie); decoding stops past it."""
    max_input_bytes: int = Field(default=200_000_000, gt=0)
    ffmpeg_memory_mb: int = Field(default=512, ge=128)
    """Address space of each ffmpeg run on an upload; a normal decode needs under 100."""
    probe_timeout_seconds: float = Field(default=20.0, gt=0)
    """Reading a file's header takes milliseconds; a probe still running then is stopped."""
    max_parallel_downloads: int = Field(default=0, ge=0)
    """Uploads downloaded at once across all users (0: four per CPU core, at least 8)."""
    max_parallel_probes: int = Field(default=0, ge=0)
    """Uploads' headers checked at once across all users (0: one per CPU core, at least 2)."""
    header_reader_python: Path | None = None
    """The Python that reads uploads' headers with PyAV (``separation.audio.probe``); default:
    the one running the bot. For a bot not run by a Python that has PyAV."""


class ModelSettings(_Section):
    name: str = "htdemucs"
    repo: Path | None = None
    """A local model folder in Demucs' --repo layout (SIG.th files and NAME.yaml bags)."""
    device: str = "auto"
    cpu_threads: int = Field(default=0, ge=0)
    """Threads torch may use on CPU; 0 keeps torch's default (one per core)."""
    shifts: int = Field(default=0, ge=0, le=20)
    overlap: float = Field(default=0.25, ge=0.0, lt=1.0)
    precision: PrecisionSetting = "auto"
    """The forward pass's number format: "auto" (bf16 where the CPU or GPU computes it
    natively, fp32 elsewhere), "fp32", "bf16" or "fp16" (see ``separation.model.precision``)."""
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
    """Any async SQLAlchemy URL; default sqlite+aiosqlite:///<data_dir>/karaoke.db. One with
    a password is better given as KARAOKE_DATABASE_URL."""
    busy_timeout_seconds: float = Field(default=30.0, gt=0)
    """How long a SQLite writer waits for another one before giving up."""


class StorageSettings(_Section):
    cleanup_interval_minutes: float = Field(default=30.0, gt=0)
    """How often orphaned uploads and interrupted writes are removed (results are kept by
    the result cache, see ``pool.cache_max_age_hours``)."""
    cache_hits_are_free: bool = True


class QuotaLimitsSettings(_Section):
    songs_per_day: int = Field(default=10, ge=0)
    audio_minutes_per_day: float = Field(default=60.0, ge=0)
    max_song_minutes: float = Field(default=15.0, gt=0)
    max_concurrent_jobs: int = Field(default=2, ge=1)

    def as_limits(self) -> QuotaLimits:
        """These defaults as the plain value ``storage`` takes."""
        return QuotaLimits(
            songs_per_day=self.songs_per_day,
            audio_minutes_per_day=self.audio_minutes_per_day,
            max_song_minutes=self.max_song_minutes,
            max_concurrent_jobs=self.max_concurrent_jobs,
        )


class QuotaSettings(_Section):
    """Per chat platform. The command line has none: it is the operator's own tool."""

    telegram: QuotaLimitsSettings = QuotaLimitsSettings()
    discord: QuotaLimitsSettings = QuotaLimitsSettings()

    def for_platform(self, platform: Platform) -> QuotaLimitsSettings:
        return self.telegram if platform == "telegram" else self.discord


class TelegramSettings(_Section):
    enabled: bool = False
    token: SecretStr | None = None
    """Better given as KARAOKE_TELEGRAM_TOKEN than written here."""
    admin_ids: list[int] = Field(default_factory=list)
    """Telegram user ids allowed to use /grant, /ban, /unban and /stats."""
    base_url: str | None = None
    """A local Bot API server, e.g. "http://127.0.0.1:8081/bot" (default: Telegram's)."""
    base_file_url: str | None = None
    local_mode: bool = False
    """With a local Bot API server: files are read from its disk, no 20 MB download limit,
    uploads up to 2000 MB."""
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: str | None = None
    """Public HTTPS URL Telegram posts updates to (webhook mode)."""
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = Field(default=8443, gt=0, lt=65536)
    webhook_secret: SecretStr | None = None
    """Better given as KARAOKE_TELEGRAM_WEBHOOK_SECRET than written here."""


class DiscordSettings(_Section):
    enabled: bool = False
    token: SecretStr | None = None
    """Better given as KARAOKE_DISCORD_TOKEN than written here."""
    admin_ids: list[int] = Field(default_factory=list)
    """Discord user ids allowed to use /admin (grant, ban, unban, stats)."""
    admin_role_ids: list[int] = Field(default_factory=list)
    """Members with any of these roles may use /admin too."""
    song_channel_ids: list[int] = Field(default_factory=list)
    """Channels where any audio or video attachment starts a job (needs the intent below)."""
    test_guild_id: int | None = None
    """Sync slash commands to this one server (instant) instead of globally."""
    message_content_intent: bool = True
    """Ask for the privileged message-content intent (enable it in the Developer Portal)."""
    interaction_token_seconds: float = Field(default=900.0, gt=0)
    """How long Discord lets a bot answer a slash command (15 minutes); later results go to
    the channel as a message that mentions the user."""


class HealthSettings(_Section):
    enabled: bool = False
    """Serve /healthz, /readyz and /metrics over HTTP (for Docker, Kubernetes, Prometheus)."""
    host: str = "127.0.0.1"
    """127.0.0.1 keeps the endpoints private to the machine; 0.0.0.0 inside a container."""
    port: int = Field(default=9108, ge=0, lt=65536)
    max_loop_lag_seconds: float = Field(default=2.0, gt=0)
    """/healthz fails when the event loop was this late: something blocked the bot."""


class RateLimitSettings(_Section):
    requests_per_minute: float = Field(default=20.0, gt=0)
    """Messages and commands one user may send per minute, on average."""
    burst: int = Field(default=5, ge=1)
    """How many may come at once before the average applies."""
    renders_per_minute: float = Field(default=6.0, gt=0)
    """Karaoke-control presses (key, tempo, guide vocal) one user may make per minute, on
    average: each costs seconds of ffmpeg, not the song quota."""
    render_burst: int = Field(default=10, ge=1)
    render_audio_minutes_per_day: float = Field(default=60.0, gt=0)
    """Minutes of audio one user may have re-rendered in any 24 hours (a render of a
    4-minute song costs 4; the same settings again cost nothing); admins are exempt.
    Counted in memory: a restart forgets it (``bot.chat.conversation.render_allowance``)."""


class PoolSettings(_Section):
    """The worker pool (``separation.pool``): workers, batching, limits, result cache."""

    devices: list[str] = []
    """One worker per entry ("cpu", "cuda:0", "cuda:1"; repeat one for two workers on it);
    empty: one worker on ``model.device``."""
    batch_size: int = Field(default=0, ge=0)
    """Segments per forward pass, from any songs; 0: measured by a sweep at start on a GPU
    (``separation.model.batch_sweep``), 1 on CPU."""
    max_running_jobs: int = Field(default=0, ge=0)
    """Songs separated at once (their segments share batches); 0: batch size x workers,
    at least 2."""
    max_queued_jobs: int = Field(default=100, ge=1)
    """Beyond this many waiting songs, new ones are refused with a "busy" message."""
    max_jobs_per_user: int = Field(default=3, ge=1)
    max_queued_renders: int = Field(default=10, ge=1)
    """Re-renders (karaoke controls pressed) queued or running at once, all users
    together; beyond it a press gets "I'm busy with other songs right now, try again in
    N s". Songs always go before re-renders, whatever this says."""
    job_timeout_seconds: float = Field(default=1800.0, gt=0)
    shutdown_timeout_seconds: float = Field(default=60.0, ge=0)
    cache_dir: Path | None = None
    """Finished results; default <data_dir>/cache."""
    cache_max_bytes: int = Field(default=5 * 1024**3, ge=0)
    """What the cache folder may take on disk, everything in it counted: results, the
    lossless stems kept for key/tempo re-renders (several times a song's MP3s), renders,
    manifests, results being written."""
    cache_max_age_hours: float = Field(default=24.0, gt=0)
    """Results are users' music: not kept (nor served) longer than this."""
    cache_min_age_minutes: float = Field(default=60.0, ge=0)
    """Songs used this recently are not evicted to make room for renders (renders are
    evicted first: they take seconds to redo), so one user's key/tempo presses cannot
    flush another user's song and stop its buttons. Only when songs this young alone
    fill ``cache_max_bytes`` does the oldest make room for a new song (logged: the limit
    is too small). A result being sent is kept for as long as that takes whatever this
    says (it is pinned)."""

    @field_validator("devices")
    @classmethod
    def _check_devices(cls, value: list[str]) -> list[str]:
        for device in value:
            if device not in ("cpu", "cuda") and not (
                device.startswith("cuda:") and device[5:].isdigit()
            ):
                raise ValueError(f"device {device!r} must be cpu, cuda or cuda:N")
        return value


class BackendSettings(_Section):
    """Where songs are separated: in this process, or by workers on any number of hosts."""

    kind: Literal["local", "distributed"] = "local"
    """"local": this process loads the model and runs the pool (one host, no servers).
    "distributed": ``run`` is a front-end that queues songs in PostgreSQL (procrastinate)
    for ``karaoke-bot worker`` processes; audio travels through ``[blobs]``."""


class QueueSettings(_Section):
    """The distributed job queue (procrastinate on the PostgreSQL of ``database.url``)."""

    name: str = Field(default="separation", pattern=r"^[a-z][a-z0-9_]{0,40}$")
    worker_concurrency: int = Field(default=4, ge=1, le=64)
    """Songs one worker takes at once; their segments share forward passes."""
    heartbeat_seconds: float = Field(default=2.0, gt=0)
    """How often a worker tells the queue it is alive."""
    stalled_after_seconds: float = Field(default=6.0, gt=0)
    """A worker silent this long is presumed dead: its songs go to another worker."""
    sweep_interval_seconds: float = Field(default=0.5, gt=0)
    """How often workers look for songs of dead workers."""
    max_attempts: int = Field(default=3, ge=1, le=10)
    """Tries per song (a worker dying counts as one); then it fails and is refunded."""
    delivery_grace_seconds: float = Field(default=30.0, gt=0)
    """A finished song waits this long for the front-end that took it before another
    front-end of the same platform delivers it."""

    @model_validator(mode="after")
    def _check_timing(self) -> QueueSettings:
        if self.stalled_after_seconds <= 2 * self.heartbeat_seconds:
            raise ValueError("queue.stalled_after_seconds must exceed 2 x heartbeat_seconds")
        return self


class BlobSettings(_Section):
    """Where the distributed backend keeps songs and results between hosts."""

    kind: Literal["local", "s3"] = "local"
    """"local": a folder (a shared mount when workers run on other hosts); "s3": any
    S3-compatible object store."""
    path: Path | None = None
    """For "local": the folder; default <data_dir>/blobs."""
    endpoint_url: str | None = None
    """For "s3": for example https://s3.eu-west-1.amazonaws.com or http://minio:9000."""
    bucket: str | None = None
    region: str = "us-east-1"
    part_size_mb: int = Field(default=8, ge=5, le=512)
    """Files larger than this are uploaded in parts of this size (S3's minimum is 5)."""
    cache_max_bytes: int = Field(default=50 * 1024**3, ge=0)
    """What the shared result cache (``results/``) may take, everything counted: songs,
    their lossless stems, renders, manifests, results being written. Over it, renders
    are deleted first, then the oldest songs; 0: bounded by ``pool.cache_max_age_hours``
    only."""
    incomplete_after_minutes: float = Field(default=60.0, gt=0)
    """A result whose manifest was never written (its worker died mid-upload) is deleted
    once its newest file is this old."""
    access_key_id: SecretStr | None = None
    """Better given as KARAOKE_S3_ACCESS_KEY_ID than written here."""
    secret_access_key: SecretStr | None = None
    """Better given as KARAOKE_S3_SECRET_ACCESS_KEY than written here."""

    @model_validator(mode="after")
    def _check_s3(self) -> BlobSettings:
        if self.kind == "s3" and not (self.endpoint_url and self.bucket):
            raise ValueError('blobs.kind = "s3" needs blobs.endpoint_url and blobs.bucket')
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError(
                "set both S3 credentials (KARAOKE_S3_ACCESS_KEY_ID and "
                "KARAOKE_S3_SECRET_ACCESS_KEY) or neither"
            )
        return self


class Settings(_Section):
    general: GeneralSettings = GeneralSettings()
    audio: AudioSettings = AudioSettings()
    model: ModelSettings = ModelSettings()
    pool: PoolSettings = PoolSettings()
    output: OutputSettings = OutputSettings()
    database: DatabaseSettings = DatabaseSettings()
    storage: StorageSettings = StorageSettings()
    quota: QuotaSettings = QuotaSettings()
    health: HealthSettings = HealthSettings()
    rate_limit: RateLimitSettings = RateLimitSettings()
    telegram: TelegramSettings = TelegramSettings()
    discord: DiscordSettings = DiscordSettings()
    backend: BackendSettings = BackendSettings()
    queue: QueueSettings = QueueSettings()
    blobs: BlobSettings = BlobSettings()

    @model_validator(mode="after")
    def _check_distributed_database(self) -> Settings:
        """The queue lives in the database: procrastinate needs PostgreSQL; and the
        packages of the distributed backend are an extra, said here rather than as an
        ImportError from deep inside ``run``."""
        needed = []
        if self.backend.kind == "distributed":
            needed += ["procrastinate", "psycopg"]
        if self.blobs.kind == "s3" and self.backend.kind == "distributed":
            needed += ["aiobotocore"]
        missing = [name for name in needed if not _installed(name)]
        if missing:
            raise ValueError(
                f'backend.kind = "distributed" needs {", ".join(missing)}: '
                "pip install 'karaoke-bot[distributed]'"
            )
        if self.backend.kind == "distributed" and not self.database_url.startswith("postgresql"):
            raise ValueError(
                'backend.kind = "distributed" needs a PostgreSQL database.url '
                "(postgresql+asyncpg://...), given as KARAOKE_DATABASE_URL or in [database]; "
                "the queue lives there"
            )
        return self

    @model_validator(mode="after")
    def _check_folders_apart(self) -> Settings:
        """Each folder is swept by its own rule (job folders of dead processes, expired
        cache entries, orphaned uploads): one inside another would sweep the other's files.
        """
        data = self.general.data_dir.resolve()
        owned = {
            "pool.cache_dir": (self.pool.cache_dir or data / "cache").resolve(),
            "tmp (<data_dir>/tmp)": (data / "tmp").resolve(),
            "uploads (<data_dir>/uploads)": (data / "uploads").resolve(),
            "results (<data_dir>/results)": (data / "results").resolve(),
            "blobs.path": (self.blobs.path or data / "blobs").resolve(),
        }
        names = list(owned)
        for index, first in enumerate(names):
            for second in names[index + 1 :]:
                a, b = owned[first], owned[second]
                if a == b or a.is_relative_to(b) or b.is_relative_to(a):
                    raise ValueError(f"{first} ({a}) and {second} ({b}) must not overlap")
        if data == owned["pool.cache_dir"] or data.is_relative_to(owned["pool.cache_dir"]):
            raise ValueError("pool.cache_dir must not contain general.data_dir")
        return self

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite+aiosqlite:///{self.general.data_dir.resolve() / 'karaoke.db'}"

    @property
    def tmp_dir(self) -> Path:
        return self.general.data_dir / "tmp"

    @property
    def blob_dir(self) -> Path:
        """The "local" blob store's folder."""
        return self.blobs.path or self.general.data_dir / "blobs"


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ValueError:  # in sys.modules as None: deliberately unavailable
        return False


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
            raise ConfigError(f"config file not found: {path}") from exc
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
_ENV_OVERRIDES: dict[str, tuple[str, str]] = {
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


def _apply_env_overrides(raw: dict[str, Any], environ: dict[str, str]) -> None:
    for variable, (section, key) in _ENV_OVERRIDES.items():
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
