"""``karaoke-bot separate INPUT...``: songs on disk to instrumental and vocal files."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from separation.errors import AudioInputError, SeparationError
from separation.models import ModelCache
from separation.pipeline import separate_file

from ..settings import Settings
from ..wiring import configure_torch, default_batch_size, pipeline_config

logger = logging.getLogger(__name__)


def add_separate_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "separate",
        help="separate songs into instrumental and vocals",
        description="Writes OUTDIR/<input stem> - instrumental.<ext> and - vocals.<ext> "
        "(and - drums, - bass, - other with --stems four).",
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
    device = configure_torch(settings)
    batch_size = args.batch_size or default_batch_size(device)
    config = pipeline_config(settings, batch_size=batch_size)
    model = ModelCache(allow_download=settings.model.allow_download).get(
        settings.model.name, repo=settings.model.repo, device=device
    )
    args.output_dir.mkdir(parents=True, exist_ok=True)
    failures = 0
    for input_path in args.inputs:
        try:
            result = _separate_one(input_path, args.output_dir, model=model, config=config)
        except (AudioInputError, SeparationError, OSError) as exc:
            failures += 1
            message = exc.user_message if isinstance(exc, AudioInputError) else str(exc)
            print(f"{input_path}: {message}", file=sys.stderr)
            logger.info(
                "failed %s: %s (%s)", input_path, type(exc).__name__, getattr(exc, "detail", "")
            )
            continue
        for path in result.outputs.values():
            print(path)
    return 1 if failures else 0


def _separate_one(input_path: Path, output_dir: Path, *, model, config):
    if not input_path.is_file():
        raise OSError(f"no such file: {input_path}")
    progress_bar = _progress_bar(input_path.name)
    try:
        return separate_file(
            input_path.resolve(),
            lambda name: output_file(output_dir, input_path, name, config.encoding.extension),
            model=model,
            config=config,
            progress=progress_bar.update_fraction,
        )
    finally:
        progress_bar.close()


class _ProgressBar:
    """A tqdm bar on a terminal; silent when stderr is redirected."""

    def __init__(self, label: str) -> None:
        self._bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=100, desc=label[:40], unit="%", leave=False)

    def update_fraction(self, fraction: float) -> None:
        if self._bar is not None:
            self._bar.n = round(fraction * 100)
            self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _progress_bar(label: str) -> _ProgressBar:
    return _ProgressBar(label)
