"""``[backend]``, ``[queue]`` and ``[blobs]``: separating songs in this process, or on
workers on any number of hosts (``bot.distributed``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from bot.settings.base import Section


class BackendSettings(Section):
    """Where songs are separated: in this process, or by workers on any number of hosts."""

    kind: Literal["local", "distributed"] = "local"
    """"local": this process loads the model and runs the pool (one host, no servers).
    "distributed": ``run`` is a front-end that queues songs in PostgreSQL (procrastinate)
    for ``karaoke-bot worker`` processes; audio travels through ``[blobs]``."""


class QueueSettings(Section):
    """The distributed job queue (procrastinate on the PostgreSQL of ``database.url``)."""

    name: str = Field(default="separation", pattern=r"^[a-z][a-z0-9_]{0,40}$")
    """The procrastinate queue songs are put on."""
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


class BlobSettings(Section):
    """Where the distributed backend keeps songs and results between hosts."""

    kind: Literal["local", "s3"] = "local"
    """"local": a folder (a shared mount when workers run on other hosts); "s3": any
    S3-compatible object store."""
    path: Path | None = None
    """For "local": the folder; default <data_dir>/blobs."""
    endpoint_url: str | None = None
    """For "s3": for example https://s3.eu-west-1.amazonaws.com or http://minio:9000."""
    bucket: str | None = None
    """For "s3": the bucket that holds uploads and results."""
    region: str = "us-east-1"
    """For "s3": the bucket's region."""
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
