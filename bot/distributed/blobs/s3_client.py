"""What the S3 store needs of aiobotocore: the optional import, the client's settings,
S3's limits, and a one-line reading of its errors.

aiobotocore comes with the "distributed" extra; without it the folder store still
works and :class:`~bot.distributed.blobs.s3.S3BlobStore` says what to install.
"""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import urlsplit

import aiohttp

from bot.distributed.blobs.base import CHECK_TIMEOUT_SECONDS

S3_IMPORT_ERROR: ImportError | None = None
try:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session as get_session
    from botocore.exceptions import BotoCoreError as BotoCoreError
    from botocore.exceptions import ClientError as ClientError
    from botocore.exceptions import (
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        ReadTimeoutError,
    )
except ImportError as exc:  # the "distributed" extra is not installed
    # The folder store works without it; S3BlobStore says what to install.
    S3_IMPORT_ERROR = exc

S3_MIN_PART_BYTES = 5 * 1024 * 1024
"""S3 refuses parts smaller than this (except the last one)."""
S3_MAX_PART_BYTES = 5 * 1024 * 1024 * 1024
S3_MAX_PARTS = 10_000
S3_DELETE_BATCH = 1000
"""``DeleteObjects`` takes at most this many keys per request."""

CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 60.0
MAX_ATTEMPTS = 3
"""Per request, retries included: a blip is ridden out, a dead store fails in seconds."""

ACCESS_DENIED_CODES = frozenset(
    {
        "403",
        "AccessDenied",
        "Forbidden",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "AllAccessDisabled",
    }
)
MISSING_KEY_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


def client_config(region: str, *, probe: bool) -> AioConfig:
    """The client's settings; ``probe``: for :meth:`check`, which tries once with short
    timeouts, so that a readiness probe reports the actual failure within seconds."""
    return AioConfig(
        region_name=region,
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        connect_timeout=CHECK_TIMEOUT_SECONDS / 2 if probe else CONNECT_TIMEOUT_SECONDS,
        read_timeout=CHECK_TIMEOUT_SECONDS / 2 if probe else READ_TIMEOUT_SECONDS,
        retries={"max_attempts": 1 if probe else MAX_ATTEMPTS, "mode": "standard"},
        # Newer botocore adds CRC trailers many S3-compatible servers reject;
        # bodies carry a Content-MD5 instead, which all of them check.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


def failure_detail(exc: Exception, *, endpoint_url: str, bucket: str, key: str | None) -> str:
    """A one-line reason for a botocore/aiohttp failure, one an admin can act on."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "NoSuchBucket" or (code in ("404", "NotFound") and key is None):
            detail = f"bucket {bucket!r} does not exist"
        elif code in ACCESS_DENIED_CODES or status == 403:
            detail = (
                f"access denied ({code or status}): check the access key, secret and bucket policy"
            )
        else:
            message = str(error.get("Message") or "")
            detail = f"{code or status}" + (f": {message}" if message else "")
    elif isinstance(exc, EndpointConnectionError):
        detail = f"cannot connect to {endpoint_url}"
    elif isinstance(exc, ConnectTimeoutError):
        detail = f"connecting to {endpoint_url} timed out"
    elif isinstance(exc, ReadTimeoutError):
        detail = f"{endpoint_url} did not answer within {READ_TIMEOUT_SECONDS:g} s"
    elif isinstance(exc, NoCredentialsError):
        detail = "no credentials (set an access key id and secret)"
    elif isinstance(exc, aiohttp.ClientError):
        detail = f"connection to {endpoint_url} failed ({type(exc).__name__})"
    else:
        detail = f"{type(exc).__name__}: {exc}"
    return " ".join(detail.split())  # one line, whatever the server sent


def content_md5(data: bytes) -> str:
    """The ``Content-MD5`` header for ``data``."""
    # Integrity, not security: the server recomputes it and refuses a damaged body.
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


def url_without_credentials(url: str) -> str:
    """``url`` without ``user:password@``, query or fragment: safe to log and show."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"
