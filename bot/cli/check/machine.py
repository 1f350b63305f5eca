"""Checks of this machine: ffmpeg, the header reader, the model's weights, the device,
the data directory and the result cache's disk. Nothing here writes except a probe file
in the data directory, removed at once."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from bot.chat.conversation.messages import megabytes
from bot.cli.check.findings import Finding
from bot.settings import Settings
from separation.audio.ffmpeg import find_ffmpeg
from separation.audio.probe import reader_version
from separation.cache.limits import disk_bytes
from separation.errors import DeviceError, FFmpegNotFoundError, HeaderReaderError


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
    from huggingface_hub import constants

    if settings.model.allow_download and repo is None and not constants.HF_HUB_OFFLINE:
        return Finding(
            "WARN", subject, "weights not downloaded yet: fetched at start (needs internet)"
        )
    return Finding(
        "FATAL",
        subject,
        f"weights not found in {repo or _hub_cache()}"
        f"{' and HF_HUB_OFFLINE is set' if repo is None and constants.HF_HUB_OFFLINE else ''}: "
        f"run `karaoke-bot models download {name}` where there is internet and copy the "
        "cache over, or set model.repo",
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
