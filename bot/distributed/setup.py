"""Settings -> the distributed backend's parts: blob store, queue, front-end backend.

Nothing here imports torch: a front-end loads no model (``karaoke-bot worker`` does, in
``bot.cli.worker``).
"""

from __future__ import annotations

from bot.distributed.admission import FrontendLimits
from bot.distributed.blobs import BlobStore, open_blob_store
from bot.distributed.frontend import DistributedBackend
from bot.distributed.postgres import psycopg_conninfo
from bot.distributed.queue import make_queue_app
from bot.distributed.retention import SharedCacheLimits
from bot.settings import Settings, secret_value


def blob_store(settings: Settings) -> BlobStore:
    """The configured blob store (credentials from the settings' secrets)."""
    blobs = settings.blobs
    return open_blob_store(
        blobs.kind,
        folder=settings.blob_dir,
        endpoint_url=blobs.endpoint_url,
        bucket=blobs.bucket,
        region=blobs.region,
        access_key_id=secret_value(blobs.access_key_id),
        secret_access_key=secret_value(blobs.secret_access_key),
        part_size_bytes=blobs.part_size_mb * 2**20,
    )


def shared_cache_limits(settings: Settings) -> SharedCacheLimits:
    """The bounds of the blob store's shared result cache (``bot.distributed.retention``)."""
    return SharedCacheLimits(
        max_bytes=settings.blobs.cache_max_bytes,
        max_age_seconds=settings.pool.cache_max_age_hours * 3600,
        incomplete_after_seconds=settings.blobs.incomplete_after_minutes * 60,
    )


def distributed_backend(settings: Settings) -> DistributedBackend:
    """A front-end's backend: songs go to the queue, results come from the blob store.

    The pool's admission settings (``pool.max_queued_jobs``, ``pool.max_jobs_per_user``)
    apply to the whole fleet.
    """
    return DistributedBackend(
        app=make_queue_app(settings),
        conninfo=psycopg_conninfo(settings.database_url),
        blobs=blob_store(settings),
        queue=settings.queue,
        limits=FrontendLimits(
            max_queued_jobs=settings.pool.max_queued_jobs,
            max_jobs_per_user=settings.pool.max_jobs_per_user,
            result_max_age_seconds=settings.pool.cache_max_age_hours * 3600,
            max_queued_renders=settings.pool.max_queued_renders,
            render_timeout_seconds=settings.pool.job_timeout_seconds,
        ),
        tmp_dir=settings.tmp_dir,
    )
