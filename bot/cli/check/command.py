"""``karaoke-bot check``: is this configuration ready to run, without starting anything?

An operator deploying the bot wants every problem at once, each on one line, before the
bot is started and fails on the first: a missing token, no ffmpeg, weights not baked
into the image, a data volume mounted read-only, a database the code cannot read. Each
check says OK, WARN (the bot runs, but look at this) or FATAL (it will not run), and the
exit code is 1 when anything is fatal, so a deploy script can stop on it.

The effective settings are printed first with every secret masked: values typed
``SecretStr``, fields named like a token, password or secret, passwords inside URLs,
and any secret value that shows up inside another value (a webhook path that is the
bot token). Nothing here writes except a probe file in the data directory, removed at
once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, SecretStr

from bot.chat.conversation.messages import megabytes
from bot.ops.secrets import (
    MASK,
    is_secret_name,
    mask_url_password,
    plain_value,
    scrub,
    secret_values,
)
from bot.process.wiring import audio_limits
from bot.settings import Settings, resolve_config_path
from separation.audio.ffmpeg import find_ffmpeg
from separation.audio.probe import reader_version
from separation.cache.limits import disk_bytes
from separation.errors import DeviceError, FFmpegNotFoundError, HeaderReaderError

_DATABASE_TIMEOUT_SECONDS = 10.0

Level = Literal["OK", "WARN", "FATAL"]


@dataclass(frozen=True)
class Finding:
    """The result of one check, printed as one line."""

    level: Level
    subject: str
    message: str

    def line(self) -> str:
        return f"{self.level:<5} {self.subject}: {self.message}"


def add_check_command(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "check",
        help="validate the configuration and environment without starting the bot",
        description="Prints the effective settings (secrets masked), then one OK/WARN/FATAL "
        "line per check; exits 1 when anything is fatal.",
    )
    parser.set_defaults(func=check_command)


def check_command(args: argparse.Namespace, settings: Settings) -> int:
    """Print the masked settings and every finding; 1 when any finding is fatal."""

    config_path = resolve_config_path(args.config)
    secrets = secret_values(settings)
    print(f"config: {config_path or 'built-in defaults'} (environment overrides applied)")
    print()
    for line in masked_settings_lines(settings):
        print(scrub(line, secrets))
    print()
    findings = run_checks(settings)
    for finding in findings:
        print(scrub(finding.line(), secrets))
    print()
    fatal = sum(finding.level == "FATAL" for finding in findings)
    warnings = sum(finding.level == "WARN" for finding in findings)
    if fatal:
        print(f"NOT READY: {fatal} problem(s) must be fixed before the bot can run")
        return 1
    print("ready to run" + (f" ({warnings} warning(s) above)" if warnings else ""))
    return 0


def run_checks(settings: Settings) -> list[Finding]:
    """Every check, in the order an operator would fix things."""
    return [
        *check_platforms(settings),
        check_ffmpeg(settings.general.ffmpeg_path),
        check_header_reader(audio_limits(settings).header_reader_python),
        check_model(settings),
        check_device(settings),
        check_data_dir(settings.general.data_dir),
        check_cache(settings),
        check_database(settings),
        *check_fleet(settings),
    ]


# --- settings, masked -----------------------------------------------------------------


def masked_settings_lines(settings: BaseModel) -> list[str]:
    """The settings as TOML-like lines, secrets replaced by ``********``."""
    lines: list[str] = []
    _describe_section(settings, (), lines)
    return lines[1:] if lines[:1] == [""] else lines


def _describe_section(model: BaseModel, path: tuple[str, ...], lines: list[str]) -> None:
    values, sections = [], []
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            sections.append((name, value))
        else:
            values.append(f"{name} = {_show(name, value)}")
    if values:
        if path:
            lines.extend(["", f"[{'.'.join(path)}]"])
        lines.extend(values)
    for name, section in sections:
        _describe_section(section, (*path, name), lines)


def _show(name: str, value: object) -> str:
    if value is None:
        return "(not set)"
    if isinstance(value, SecretStr) or (isinstance(value, str) and is_secret_name(name)):
        return json.dumps(MASK) if plain_value(value) else '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_show(name, item) for item in value) + "]"
    return json.dumps(mask_url_password(str(value)))


# --- checks ---------------------------------------------------------------------------


def _platform_sections(settings: Settings) -> Iterator[tuple[str, BaseModel]]:
    """Sections that look like a chat platform: an ``enabled`` switch and a ``token``."""
    for name in type(settings).model_fields:
        section = getattr(settings, name)
        if isinstance(section, BaseModel) and {"enabled", "token"} <= set(
            type(section).model_fields
        ):
            yield name, section


def check_platforms(settings: Settings) -> list[Finding]:
    """Each enabled platform has a token; at least one platform is enabled."""
    findings = []
    enabled = 0
    for name, section in _platform_sections(settings):
        token = getattr(section, "token", None)
        enabled += bool(getattr(section, "enabled", False))
        if not getattr(section, "enabled", False):
            findings.append(Finding("OK", name, "disabled"))
        elif token is None or not plain_value(token).strip():
            findings.append(
                Finding(
                    "FATAL",
                    name,
                    f"enabled but no token: set KARAOKE_{name.upper()}_TOKEN in the "
                    f"environment (or {name}.token in the config)",
                )
            )
        else:
            findings.append(Finding("OK", name, f"enabled, token set ({MASK})"))
    if not findings:
        return [Finding("WARN", "platforms", "no chat platform settings in this version")]
    if not enabled:
        names = ", ".join(f"{name}.enabled" for name, _ in _platform_sections(settings))
        findings.append(
            Finding("FATAL", "platforms", f"no chat platform is enabled (set {names} = true)")
        )
    return findings


def check_ffmpeg(configured: str | None) -> Finding:
    """ffmpeg exists and runs (decoding and encoding need it)."""
    try:
        ffmpeg = find_ffmpeg(configured)
        completed = subprocess.run(
            [ffmpeg, "-hide_banner", "-version"],
            capture_output=True,
            timeout=10,
            check=True,
        )
    except FFmpegNotFoundError as exc:
        return Finding("FATAL", "ffmpeg", str(exc))
    except (OSError, subprocess.SubprocessError) as exc:
        return Finding("FATAL", "ffmpeg", f"{configured or 'ffmpeg'} does not run: {exc}")
    # "ffmpeg version 6.1.1-3 Copyright (c) ..." -> "6.1.1-3"
    words = completed.stdout.decode("utf-8", "replace").split(maxsplit=3)
    version = words[2] if len(words) > 2 else "version unknown"
    return Finding("OK", "ffmpeg", f"{ffmpeg} ({version})")


def check_header_reader(python: str) -> Finding:
    """``python``, which reads uploads' headers (``separation.audio.probe``), imports PyAV:
    without it every song would fail its header check."""
    try:
        version = reader_version(python)
    except HeaderReaderError as exc:
        return Finding("FATAL", "header reader", str(exc))
    return Finding("OK", "header reader", f"PyAV {version}")


def check_model(settings: Settings) -> Finding:
    """The configured model's weights are on this machine (a bot starts offline)."""
    from separation.model.loading import is_available_locally  # torch: not for a bad config

    name, repo = settings.model.name, settings.model.repo
    subject = f"model {name}"
    if repo is not None and not repo.is_dir():
        return Finding("FATAL", subject, f"model folder {repo} does not exist")
    if is_available_locally(name, repo):
        return Finding("OK", subject, f"weights found in {repo or _hub_cache()}")
    if settings.model.allow_download:
        return Finding(
            "WARN", subject, "weights not downloaded yet: fetched at start (needs internet)"
        )
    return Finding(
        "FATAL",
        subject,
        f"weights not found in {repo or _hub_cache()}: run `karaoke-bot models download "
        f"{name}` where there is internet and copy the cache over, or set model.repo",
    )


def _hub_cache() -> str:
    from huggingface_hub import constants

    return f"the HuggingFace cache ({constants.HF_HUB_CACHE})"


def check_device(settings: Settings) -> Finding:
    """The device separation will run on: GPU name and memory, or CPU threads."""
    import torch

    from separation.model.loading import describe_device, resolve_device

    try:
        device = resolve_device(settings.model.device)
    except DeviceError as exc:
        return Finding("FATAL", "device", str(exc))
    if device.type != "cpu":
        return Finding("OK", "device", describe_device(device))
    # Not torch.set_num_threads(): a check must not change the process it runs in.
    threads = settings.model.cpu_threads or torch.get_num_threads()
    description = f"cpu ({threads} threads)"
    if settings.model.device == "auto" and torch.version.cuda is not None:
        return Finding(
            "WARN",
            "device",
            f"{description}: this torch supports CUDA but sees no GPU "
            "(in Docker, run with --gpus all); separation will be slow",
        )
    return Finding("OK", "device", description)


def check_data_dir(data_dir: Path) -> Finding:
    """The data directory exists and is writable, or can be created."""
    subject = f"data dir {data_dir}" + (
        "" if data_dir.is_absolute() else f" ({data_dir.absolute()})"
    )
    existing = data_dir.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return Finding("FATAL", subject, f"{existing} is not a folder")
    try:
        handle, probe = tempfile.mkstemp(prefix=".karaoke-check-", dir=existing)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        return Finding("FATAL", subject, f"{existing} is not writable ({exc.strerror or exc})")
    if existing == data_dir.absolute():
        return Finding("OK", subject, "writable")
    return Finding("OK", subject, f"created at start ({existing} is writable)")


def check_cache(settings: Settings) -> Finding:
    """The result cache's disk use against ``pool.cache_max_bytes`` (everything it keeps
    counts: stems and renders too), and whether its disk has room for the limit."""
    folder = settings.pool.cache_dir or settings.general.data_dir / "cache"
    limit = settings.pool.cache_max_bytes
    used = disk_bytes(folder)  # read only: 0 when the folder is not there yet
    subject = f"cache {folder}"
    usage = f"{megabytes(used)} on disk of {megabytes(limit)} (pool.cache_max_bytes)"
    if used > limit:
        return Finding(
            "WARN",
            subject,
            f"{usage}: over its limit; the bot evicts down to it at start, except songs "
            f"used in the last {settings.pool.cache_min_age_minutes:g} minutes",
        )
    existing = folder.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        free = shutil.disk_usage(existing).free
    except OSError:
        return Finding("OK", subject, usage)
    if limit - used > free:
        return Finding(
            "WARN",
            subject,
            f"{usage}, but its disk has only {megabytes(free)} free: lower "
            "pool.cache_max_bytes or the disk fills before the cache does",
        )
    return Finding("OK", subject, usage)


def check_database(settings: Settings) -> Finding:
    """The database opens and its schema is at the revision this code expects.

    Behind is a warning (the bot upgrades it on start); a revision this code does not
    know means a newer version wrote it, and running older code on it is fatal.
    """
    url = settings.database_url
    subject = f"database {mask_url_password(url)}"
    # Imported here: alembic and the drivers are not needed by the other checks.
    from alembic.script import ScriptDirectory
    from sqlalchemy.engine import make_url

    from storage import migrate
    from storage.db import open_database

    head = migrate.head_revision()
    known = {
        script.revision
        for script in ScriptDirectory.from_config(migrate.alembic_config()).walk_revisions()
    }
    try:
        parsed = make_url(url)
    except Exception as exc:
        return Finding("FATAL", subject, f"invalid database URL: {exc}")
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        if not Path(parsed.database).exists():
            return Finding("OK", subject, "not created yet: created and migrated at start")

    async def read_revision() -> str | None:
        database = open_database(url, busy_timeout_seconds=settings.database.busy_timeout_seconds)
        try:
            async with asyncio.timeout(_DATABASE_TIMEOUT_SECONDS):
                return await migrate.current_revision(database)
        finally:
            await database.close()

    try:
        current = asyncio.run(read_revision())
    except TimeoutError:
        return Finding("FATAL", subject, f"no answer within {_DATABASE_TIMEOUT_SECONDS:.0f} s")
    except Exception as exc:  # driver errors differ by backend; each is one fatal line
        return Finding("FATAL", subject, f"cannot read it: {_one_line_reason(exc)}")
    if current == head:
        return Finding("OK", subject, f"schema up to date (revision {head})")
    if current is None:
        return Finding("WARN", subject, "empty: the schema is created at start")
    if current not in known:
        return Finding(
            "FATAL",
            subject,
            f"at revision {current}, unknown to this version (written by a newer one?)",
        )
    return Finding(
        "WARN",
        subject,
        f"at revision {current}, head is {head}: upgraded at start or by `karaoke-bot db upgrade`",
    )


def check_fleet(settings: Settings) -> list[Finding]:
    """With the distributed backend: the queue, the blob store, and live workers."""
    if settings.backend.kind != "distributed":
        return []
    from bot.distributed.frontend import DistributedBackend
    from bot.distributed.setup import distributed_backend

    backend = distributed_backend(settings)
    queue_subject = f"queue {settings.queue.name!r}"
    blob_subject = f"blob store {backend.describe_blobs()}"

    async def probe(backend: DistributedBackend) -> list[Finding]:
        findings = []
        async with asyncio.timeout(_DATABASE_TIMEOUT_SECONDS):
            checks = backend.readiness_checks()
            async with backend.opened():
                try:
                    await checks["queue"]()
                    findings.append(Finding("OK", queue_subject, "reachable"))
                except Exception as exc:
                    findings.append(Finding("FATAL", queue_subject, _one_line_reason(exc)))
                try:
                    await checks["blob_store"]()
                    findings.append(Finding("OK", blob_subject, "can write and delete"))
                except Exception as exc:
                    findings.append(Finding("FATAL", blob_subject, _one_line_reason(exc)))
                try:
                    alive = await backend.workers_alive()
                except Exception as exc:
                    findings.append(Finding("FATAL", "workers", _one_line_reason(exc)))
                else:
                    level: Level = "OK" if alive else "WARN"
                    note = f"{alive} alive" if alive else "none alive: songs wait for one to start"
                    findings.append(Finding(level, "workers", note))
        return findings

    try:
        return asyncio.run(probe(backend))
    except TimeoutError:
        return [Finding("FATAL", queue_subject, "no answer within 10 s")]
    except Exception as exc:
        return [Finding("FATAL", queue_subject, _one_line_reason(exc))]


def _one_line_reason(exc: BaseException) -> str:
    """storage's own reason, else the driver's first line (not SQLAlchemy's SQL dump)."""
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str) and reason:
        return reason
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
