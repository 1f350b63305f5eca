"""``karaoke-bot separate INPUT...``: songs on disk to instrumental and vocal files.

The inputs go through the same worker pool as the bot's users, all at once: their
segments share forward passes, a song separated before comes from the result cache
(``<data_dir>/cache`` unless ``pool.cache_dir`` says otherwise), and the same input
given twice runs once. Outputs are copied out of the cache into OUTDIR.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import shutil
import sys
from pathlib import Path

from separation.errors import AudioInputError, SeparationError
from separation.jobs import (
    JobHandle,
    JobResult,
    Queued,
    Running,
    SeparationBackend,
    SeparationRequest,
)
from separation.pool import PoolConfig

from ..settings import Settings
from ..wiring import build_pool, configure_torch, encoding_spec, pool_config

logger = logging.getLogger(__name__)

CLI_USER = "cli"


def add_separate_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "separate",
        help="separate songs into instrumental and vocals",
        description="Writes OUTDIR/<input stem> - instrumental.<ext> and - vocals.<ext> "
        "(and - drums, - bass, - other with --stems four). Several inputs are separated "
        "together.",
    )
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT")
    parser.add_argument("-o", "--output-dir", type=Path, default=Path("."), metavar="OUTDIR")
    parser.add_argument("--model", help="model name (default from config: htdemucs)")
    parser.add_argument(
        "--model-repo", type=Path, metavar="DIR", help="local model folder in Demucs' --repo layout"
    )
    parser.add_argument("--stems", choices=["two", "four"])
    parser.add_argument("--format", choices=["mp3", "opus", "flac", "wav"])
    parser.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--shifts", type=int, help="random shifts averaged (0 = deterministic)")
    parser.add_argument("--overlap", type=float, help="segment overlap, 0 to <1 (default 0.25)")
    parser.add_argument("--batch-size", type=int, help="segments per forward pass")
    parser.set_defaults(func=separate_command, apply_overrides=apply_separate_overrides)


def apply_separate_overrides(args: argparse.Namespace, settings: Settings) -> None:
    """Command-line flags win over the config file (validated by the same settings types)."""
    overrides = {
        ("model", "name"): args.model, ("model", "repo"): args.model_repo,
        ("model", "device"): args.device, ("model", "shifts"): args.shifts,
        ("model", "overlap"): args.overlap, ("output", "stems"): args.stems,
        ("output", "format"): args.format,
    }  # fmt: skip
    for (section, key), value in overrides.items():
        if value is not None:
            setattr(getattr(settings, section), key, value)


def output_file(output_dir: Path, input_path: Path, name: str, extension: str) -> Path:
    return output_dir / f"{input_path.stem} - {name}.{extension}"


def separate_command(args: argparse.Namespace, settings: Settings) -> int:
    """Separate every input; one clear line per failure; exit 1 if any failed."""
    configure_torch(settings)
    config = pool_config(settings, batch_size=args.batch_size)
    # Every input is this one user's: the pool's per-user and queue limits must admit all.
    config = dataclasses.replace(
        config,
        max_jobs_per_user=max(config.max_jobs_per_user, len(args.inputs)),
        max_queued_jobs=max(config.max_queued_jobs, len(args.inputs)),
        warm_up=False,
    )
    args.output_dir.mkdir(parents=True, exist_ok=True)
    found = {path: path.resolve() for path in args.inputs if path.is_file()}
    return asyncio.run(_separate_all(args.inputs, found, args.output_dir, settings, config))


async def _separate_all(
    inputs: list[Path],
    found: dict[Path, Path],
    output_dir: Path,
    settings: Settings,
    config: PoolConfig,
) -> int:
    pool = build_pool(settings, config)
    await pool.start()
    try:
        outcomes = await asyncio.gather(
            *(
                _separate_one(
                    pool, input_path, found.get(input_path), output_dir, settings, position
                )
                for position, input_path in enumerate(inputs)
            ),
            return_exceptions=True,
        )
    finally:
        await pool.shutdown(timeout=0)
    failures = 0
    for input_path, outcome in zip(inputs, outcomes, strict=True):
        if isinstance(outcome, AudioInputError | SeparationError | OSError):
            failures += 1
            message = outcome.user_message if isinstance(outcome, AudioInputError) else str(outcome)
            print(f"{input_path}: {message}", file=sys.stderr)
            logger.info(
                "failed %s: %s (%s)",
                input_path,
                type(outcome).__name__,
                getattr(outcome, "detail", ""),
            )
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            for path in outcome:
                print(path)
    return 1 if failures else 0


async def _separate_one(
    pool: SeparationBackend,
    input_path: Path,
    resolved: Path | None,
    output_dir: Path,
    settings: Settings,
    position: int,
) -> list[Path]:
    """Submit one input, follow its progress, copy its outputs; returns the files written."""
    if resolved is None:
        raise OSError(f"no such file: {input_path}")
    spec = encoding_spec(settings)
    handle = await pool.submit(
        SeparationRequest(
            user_key=CLI_USER,
            input_path=resolved,
            mode=settings.output.stems,
            encoding=spec,
            fallback_title=input_path.stem,
        )
    )
    progress_bar = _ProgressBar(input_path.name, position)
    try:
        await _follow(handle, progress_bar)
        result = await handle.result()
    finally:
        progress_bar.close()
    return await asyncio.to_thread(_copy_outputs, result, output_dir, input_path, spec.extension)


async def _follow(handle: JobHandle, progress_bar: _ProgressBar) -> None:
    async for event in handle.events():
        if isinstance(event, Queued):
            progress_bar.waiting(event.position)
        elif isinstance(event, Running):
            progress_bar.update_fraction(event.fraction)


def _copy_outputs(
    result: JobResult, output_dir: Path, input_path: Path, extension: str
) -> list[Path]:
    written = []
    for name, source in result.outputs.items():
        target = output_file(output_dir, input_path, name, extension)
        shutil.copyfile(source, target)
        written.append(target)
    return written


class _ProgressBar:
    """A tqdm bar per input on a terminal; silent when stderr is redirected."""

    def __init__(self, label: str, position: int) -> None:
        self._bar = None
        self._label = label[:40]
        if sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=100, desc=self._label, unit="%", leave=False, position=position)

    def waiting(self, position: int) -> None:
        if self._bar is not None:
            self._bar.set_description(f"{self._label} (queued #{position})")

    def update_fraction(self, fraction: float) -> None:
        if self._bar is not None:
            self._bar.set_description(self._label)
            self._bar.n = round(fraction * 100)
            self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
