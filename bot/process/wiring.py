"""Turning settings into the plain objects the chat flow and ``storage/`` take.

The flow and the store do not know about the settings file; this module and
``bot.process.backend`` (the model and the worker pool, which need torch) are the only places
that translate, so a renamed setting changes one line. Nothing here imports torch, so
the admin commands and ``--help`` stay fast; nor numpy (the chat flow's and the decoder's
types are imported where they are built), so ``users`` and ``stats`` answer in well
under a second.
"""

from __future__ import annotations

import os
import socket
import sys
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.settings import Settings
from bot.settings.links import LinksSettings
from separation.audio.encode import EncodingSpec
from separation.audio.ffmpeg import find_ffmpeg
from storage.records import Platform, QuotaLimits

if TYPE_CHECKING:
    from bot.chat.conversation.flow import FlowConfig
    from separation.audio.decode import AudioLimits
    from separation.lyrics.lrclib import LrclibClient
    from storage.store import Store


def audio_limits(settings: Settings) -> AudioLimits:
    from separation.audio.decode import AudioLimits

    return AudioLimits(
        max_duration_seconds=settings.audio.max_duration_seconds,
        max_input_bytes=settings.audio.max_input_bytes,
        ffmpeg_memory_bytes=settings.audio.ffmpeg_memory_mb * 2**20,
        probe_timeout_seconds=settings.audio.probe_timeout_seconds,
        header_reader_python=str(settings.audio.header_reader_python or sys.executable),
    )


def ingest_parallelism(settings: Settings) -> tuple[int, int]:
    """(downloads, header checks) at once across all users: the settings, or from the
    core count (downloads wait on the network, header checks on a core)."""
    cores = os.cpu_count() or 2
    downloads = settings.audio.max_parallel_downloads or max(8, 4 * cores)
    probes = settings.audio.max_parallel_probes or max(2, cores)
    return downloads, probes


def encoding_spec(settings: Settings) -> EncodingSpec:
    return EncodingSpec(format=settings.output.format, bitrate_kbps=settings.output.mp3_bitrate)


def quota_limits(settings: Settings, platform: Platform) -> QuotaLimits:
    """The platform's default limits from the settings, as the value ``storage`` takes."""
    return settings.quota.for_platform(platform).as_limits()


def flow_config(settings: Settings) -> FlowConfig:
    """The chat flow's view of the settings."""
    from bot.chat.conversation.flow import FlowConfig

    downloads, probes = ingest_parallelism(settings)
    return FlowConfig(
        model_name=settings.model.name,
        ffmpeg=find_ffmpeg(settings.general.ffmpeg_path),
        limits=audio_limits(settings),
        quota_limits=lambda platform: quota_limits(settings, platform),
        encoding=encoding_spec(settings),
        min_mp3_bitrate=settings.output.min_mp3_bitrate,
        separation_settings={"shifts": settings.model.shifts, "overlap": settings.model.overlap},
        retention_hours=settings.pool.cache_max_age_hours,
        max_parallel_downloads=downloads,
        max_parallel_probes=probes,
        frontend_id=frontend_id(settings),
        delivery_lease_seconds=settings.queue.delivery_grace_seconds,
        video_look=settings.video.look(),
        videos_per_hour=settings.video.videos_per_hour,
        lyrics_from_tags=settings.lyrics.from_tags,
        lyrics_alignment=settings.lyrics.alignment,
    )


def links_settings(settings: Settings) -> LinksSettings:
    """``[links]`` as the link service takes them: no link downloads more than an upload
    may be (``audio.max_input_bytes``), so a file too big is cut while it downloads
    rather than refused once it is on disk."""
    cap = min(settings.links.max_bytes, settings.audio.max_input_bytes)
    return settings.links.model_copy(update={"max_bytes": cap})


def lyrics_service(settings: Settings) -> LrclibClient | None:
    """The synced-lyrics service the chat asks for a song's words; None when the
    operator turned it off (``lyrics.lrclib``)."""
    if not settings.lyrics.lrclib:
        return None
    from separation.lyrics.lrclib import LrclibClient

    return LrclibClient(
        str(settings.lyrics.lrclib_url),
        timeout_seconds=settings.lyrics.lrclib_timeout_seconds,
        max_bytes=settings.lyrics.lrclib_max_bytes,
    )


def frontend_id(settings: Settings) -> str | None:
    """A distributed front-end's id: its host and platforms, so that the same front-end
    restarted takes its own songs back at once (None with the local backend)."""
    if settings.backend.kind != "distributed":
        return None
    platforms = [name for name in ("telegram", "discord") if getattr(settings, name).enabled]
    return f"{socket.gethostname()}:{'+'.join(platforms) or 'none'}"[:64]


async def open_store(settings: Settings, *, migrate: bool = True) -> Store:
    """Open the store the settings describe (the bot and the admin commands share it).

    Raises:
        DatabaseOpenError, DataDirError: see :meth:`storage.store.Store.open`.
    """
    from storage.store import Store  # SQLAlchemy: not for ``separate`` (issue 26)

    return await Store.open(
        settings.database_url,
        settings.general.data_dir,
        cache_hits_are_free=settings.storage.cache_hits_are_free,
        busy_timeout_seconds=settings.database.busy_timeout_seconds,
        migrate=migrate,
        # A job's lyrics are kept as long as its stems: a video needs both.
        lyrics_max_age=timedelta(hours=settings.pool.cache_max_age_hours),
    )
