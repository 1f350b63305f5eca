"""``[database]``, ``[storage]`` and ``[quota.*]``: what the bot remembers and how much
each user may ask of it (the ``storage`` package takes the plain values made here)."""

from __future__ import annotations

from pydantic import Field

from bot.settings.base import Section
from storage.records import Platform, QuotaLimits


class DatabaseSettings(Section):
    """The one database: SQLite by default, PostgreSQL for a fleet."""

    url: str | None = None
    """Any async SQLAlchemy URL; default sqlite+aiosqlite:///<data_dir>/karaoke.db. One with
    a password is better given as KARAOKE_DATABASE_URL."""
    busy_timeout_seconds: float = Field(default=30.0, gt=0)
    """How long a SQLite writer waits for another one before giving up."""


class StorageSettings(Section):
    """Housekeeping of the files the store owns."""

    cleanup_interval_minutes: float = Field(default=30.0, gt=0)
    """How often orphaned uploads and interrupted writes are removed (results are kept by
    the result cache, see ``pool.cache_max_age_hours``)."""
    cache_hits_are_free: bool = True
    """A song served from the result cache does not count against the user's quota."""


class QuotaLimitsSettings(Section):
    """One platform's per-user limits over a rolling 24 hours; admins are unlimited."""

    songs_per_day: int = Field(default=10, ge=0)
    """Songs one user may have separated in any 24 hours."""
    audio_minutes_per_day: float = Field(default=60.0, ge=0)
    """Minutes of audio (decoded length) one user may have separated in any 24 hours."""
    max_song_minutes: float = Field(default=15.0, gt=0)
    """Longest song one user may send, in minutes."""
    max_concurrent_jobs: int = Field(default=2, ge=1)
    """Songs of one user in progress at once."""

    def as_limits(self) -> QuotaLimits:
        """These defaults as the plain value ``storage`` takes."""
        return QuotaLimits(
            songs_per_day=self.songs_per_day,
            audio_minutes_per_day=self.audio_minutes_per_day,
            max_song_minutes=self.max_song_minutes,
            max_concurrent_jobs=self.max_concurrent_jobs,
        )


class QuotaSettings(Section):
    """Per chat platform. The command line has none: it is the operator's own tool."""

    telegram: QuotaLimitsSettings = QuotaLimitsSettings()
    discord: QuotaLimitsSettings = QuotaLimitsSettings()

    def for_platform(self, platform: Platform) -> QuotaLimitsSettings:
        """The limits of ``platform``'s users."""
        return self.telegram if platform == "telegram" else self.discord
