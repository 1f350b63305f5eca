"""``Settings``: every section together, and the rules that span sections.

A rule that reads two sections (the distributed backend needs PostgreSQL; folders swept
by different rules must not nest) lives here, not in either section.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from pydantic import model_validator

from bot.settings.audio import AudioSettings, OutputSettings
from bot.settings.base import Section
from bot.settings.chat import DiscordSettings, RateLimitSettings, TelegramSettings
from bot.settings.data import DatabaseSettings, QuotaSettings, StorageSettings
from bot.settings.fleet import BackendSettings, BlobSettings, QueueSettings
from bot.settings.general import GeneralSettings, HealthSettings
from bot.settings.karaoke import LyricsSettings, VideoSettings
from bot.settings.links import LinksSettings
from bot.settings.model import ModelSettings, PoolSettings


class Settings(Section):
    """The whole configuration, one attribute per ``config.toml`` table."""

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
    lyrics: LyricsSettings = LyricsSettings()
    video: VideoSettings = VideoSettings()
    links: LinksSettings = LinksSettings()

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
        """``database.url``, or the SQLite file under ``general.data_dir``."""
        if self.database.url:
            return self.database.url
        return f"sqlite+aiosqlite:///{self.general.data_dir.resolve() / 'karaoke.db'}"

    @property
    def tmp_dir(self) -> Path:
        """Private job folders, swept of what dead processes left."""
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
