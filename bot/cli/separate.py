"""``karaoke-bot separate INPUT...``: songs on disk to instrumental and vocal files.

The inputs go through the same worker pool as the bot's users, all at once: their
segments share forward passes, a song separated before comes from the result cache
(``<data_dir>/cache`` unless ``pool.cache_dir`` says otherwise), and the same input
given twice runs once. Outputs are copied out of the cache into OUTDIR.

Everything that can be checked without the model is checked before it loads (seconds):
each flag by the setting it overrides, every input path, the output folder. Two inputs
with the same name (``a/song.mp3 b/song.ogg``) get distinct output names
(``song - ...`` and ``song (2) - ...``), and a note on stderr says so.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli import messages
from bot.cli.messages import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError
from separation.errors import AudioInputError, InvalidRenderOptionError, SeparationError

if TYPE_CHECKING:  # torch comes with these; they are imported when a song is separated
    from bot.settings import Settings
    from separation.audio.encode import EncodingSpec
    from separation.audio.render_options import RenderOptions
    from separation.jobs import JobHandle, JobResult, SeparationBackend

logger = logging.getLogger(__name__)

CLI_USER = "cli"

# Each flag overrides one setting and is validated by that setting's type and limits.
FLAG_SETTINGS: dict[str, tuple[str, str]] = {
    "model": ("model", "name"),
    "model_repo": ("model", "repo"),
    "device": ("model", "device"),
    "shifts": ("model", "shifts"),
    "overlap": ("model", "overlap"),
    "precision": ("model", "precision"),
    "stems": ("output", "stems"),
    "format": ("output", "format"),
    "batch_size": ("pool", "batch_size"),
}


def add_separate_command(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "separate",
        help="separate songs into instrumental and vocals",
        description="Writes OUTDIR/<input stem> - instrumental.<ext> and - vocals.<ext> "
        "(and - drums, - bass, - other with --stems four). Several inputs are separated "
        "together; an input whose name another already has gets '<stem> (2)'. Flags are "
        "checked like the config file's settings, and inputs before the model loads.",
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
    parser.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16", "fp16"],
        help="forward pass format (default auto: bf16 where the hardware computes it natively)",
    )
    controls = parser.add_argument_group(
        "karaoke controls",
        "re-render the outputs from the separated stems (seconds, no second model run)",
    )
    controls.add_argument(
        "--key", type=int, metavar="N", help="semitones, -6 to +6 (pitch only, tempo kept)"
    )
    controls.add_argument(
        "--tempo", type=float, metavar="X", help="speed, 0.5 to 1.5 (0.9: 10%% slower)"
    )
    controls.add_argument(
        "--guide", type=float, metavar="DB", help="vocals mixed into the instrumental, -30 to -6"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        help="segments per forward pass (0: measured at start on a GPU, 1 on CPU)",
    )
    parser.set_defaults(func=separate_command, apply_overrides=apply_separate_overrides)


def apply_separate_overrides(args: argparse.Namespace, settings: Settings) -> None:
    """Command-line flags win over the config file, validated like the file's values.

    Raises:
        UsageError: a value the setting refuses, named by the flag (``--batch-size -3``).
    """
    from pydantic import ValidationError  # not at the top: --help must not wait for it

    for dest, (section, key) in FLAG_SETTINGS.items():
        value = getattr(args, dest)
        if value is None:
            continue
        try:
            setattr(getattr(settings, section), key, value)
        except ValidationError as exc:
            reason = "; ".join(error["msg"] for error in exc.errors())
            option = "--" + dest.replace("_", "-")
            raise UsageError(messages.bad_option(option, reason, f"{section}.{key}")) from None


def output_file(output_dir: Path, stem: str, name: str, extension: str) -> Path:
    return output_dir / f"{stem} - {name}.{extension}"


def input_problems(inputs: list[Path]) -> list[str]:
    """What is wrong with each input path that cannot be separated at all."""
    problems = []
    for path in inputs:
        if path.is_dir():
            problems.append(messages.is_a_directory(path))
        elif not path.exists():
            problems.append(messages.no_such_file(path))
        elif not os.access(path, os.R_OK):
            problems.append(messages.not_readable(path, "permission denied"))
    return problems


@dataclasses.dataclass(frozen=True)
class _Input:
    path: Path
    """As typed: named in messages."""
    resolved: Path
    stem: str
    """What its output files are named after, distinct within one run."""


def plan_inputs(paths: list[Path]) -> list[_Input]:
    """One entry per distinct file, each with output names no other input uses.

    The same file given twice runs once. ``a/song.mp3 b/song.ogg`` would otherwise
    write the same two files twice, so the second becomes ``song (2)`` (with a note).
    Case is ignored, since ``Song`` and ``song`` are one file on macOS and Windows.
    """
    planned: dict[Path, _Input] = {}
    owners: dict[str, Path] = {}
    for path in paths:
        resolved = path.resolve()
        if resolved in planned:
            continue
        stem = path.stem
        if stem.casefold() in owners:
            number = 2
            while f"{stem} ({number})".casefold() in owners:
                number += 1
            first, stem = owners[stem.casefold()], f"{stem} ({number})"
            messages.note(messages.same_name(path, first, stem))
        owners[stem.casefold()] = path
        planned[resolved] = _Input(path, resolved, stem)
    return list(planned.values())


def prepare_output_dir(output_dir: Path) -> None:
    """Create OUTDIR (and its parents).

    Raises:
        UsageError: it is an existing file, or it cannot be created.
    """
    if output_dir.exists() and not output_dir.is_dir():
        raise UsageError(messages.output_is_a_file(output_dir))
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(messages.output_not_usable(output_dir, exc.strerror or str(exc))) from None


def render_options(args: argparse.Namespace) -> RenderOptions:
    """The karaoke controls asked for (identity when none).

    Raises:
        UsageError: a value out of range, in the same sentence a chat user would get.
    """
    from separation.audio.render_options import RenderOptions

    fields = {"key": args.key, "tempo": args.tempo, "guide_db": args.guide}
    try:
        return RenderOptions(**{name: value for name, value in fields.items() if value is not None})
    except InvalidRenderOptionError as exc:
        raise UsageError(exc.user_message) from None


def separate_command(args: argparse.Namespace, settings: Settings) -> int:
    """Separate every input; one clear line per failure; exit 1 if any failed.

    Paths and karaoke controls are checked before the model loads: a typo costs nothing
    and nothing runs.
    """
    controls = render_options(args)
    problems = input_problems(args.inputs)
    for problem in problems:
        messages.error(problem)
    if problems:
        messages.error(messages.nothing_separated(len(problems)))
        return EXIT_USAGE
    prepare_output_dir(args.output_dir)
    inputs = plan_inputs(args.inputs)

    if settings.backend.kind == "distributed":
        from bot.distributed.setup import distributed_backend

        # The songs go to the fleet's workers; the queue's limits apply as to any user.
        return asyncio.run(
            _separate_all(
                inputs, args.output_dir, settings, distributed_backend(settings), controls
            )
        )

    from bot.process.backend import build_pool, configure_torch, pool_config  # torch: only here

    configure_torch(settings)
    config = pool_config(settings)
    # Every input is this one user's: the pool's per-user and queue limits must admit all.
    config = dataclasses.replace(
        config,
        max_jobs_per_user=max(config.max_jobs_per_user, len(inputs)),
        max_queued_jobs=max(config.max_queued_jobs, len(inputs)),
        warm_up=False,
    )
    return asyncio.run(
        _separate_all(inputs, args.output_dir, settings, build_pool(settings, config), controls)
    )


async def _separate_all(
    inputs: list[_Input],
    output_dir: Path,
    settings: Settings,
    backend: SeparationBackend,
    controls: RenderOptions,
) -> int:
    await backend.start()
    try:
        outcomes = await asyncio.gather(
            *(
                _separate_one(backend, item, output_dir, settings, position, controls)
                for position, item in enumerate(inputs)
            ),
            return_exceptions=True,
        )
    finally:
        await backend.shutdown(timeout=0)
    failures = 0
    for item, outcome in zip(inputs, outcomes, strict=True):
        if isinstance(outcome, AudioInputError | SeparationError | OSError):
            failures += 1
            messages.error(messages.input_failed(item.path, outcome))
            logger.info(
                "failed %s: %s (%s)",
                item.path,
                type(outcome).__name__,
                getattr(outcome, "detail", ""),
            )
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            for path in outcome:
                print(path)
    return EXIT_FAILED if failures else EXIT_OK


async def _separate_one(
    pool: SeparationBackend,
    item: _Input,
    output_dir: Path,
    settings: Settings,
    position: int,
    controls: RenderOptions,
) -> list[Path]:
    """Submit one input, follow its progress, copy its outputs (re-rendered with the
    karaoke controls, if any); returns the files written."""
    from bot.process.wiring import encoding_spec
    from separation.jobs import SeparationRequest

    spec = encoding_spec(settings)
    handle = await pool.submit(
        SeparationRequest(
            user_ref=CLI_USER,
            input_path=item.resolved,
            stems=settings.output.stems,
            encoding=spec,
            fallback_title=item.path.stem,
        )
    )
    progress_bar = _ProgressBar(item.path.name, position)
    try:
        await _follow(handle, progress_bar)
        result = await handle.result()
    finally:
        progress_bar.close()
    if not controls.is_identity:
        result = await _rendered(pool, result, controls, spec)
    try:
        return await asyncio.to_thread(_copy_outputs, result, output_dir, item.stem, spec.extension)
    finally:
        result.release()  # the cache may evict its copy; a remote backend's is deleted


async def _rendered(
    pool: SeparationBackend, separated: JobResult, controls: RenderOptions, spec: EncodingSpec
) -> JobResult:
    """``separated`` re-rendered from its stems with ``controls`` (by this process's pool,
    or by a worker of the fleet)."""
    from separation.cpu_budget import Lane
    from separation.jobs import RenderingBackend, RenderRequest

    assert isinstance(pool, RenderingBackend), "both backends render"
    request = RenderRequest(separated.cache_key, controls, encoding=spec, lane=Lane.FIRST_RESULT)
    try:
        return await pool.render(request)
    finally:
        separated.release()


async def _follow(handle: JobHandle, progress_bar: _ProgressBar) -> None:
    from separation.jobs import Queued, Running

    async for event in handle.events():
        if isinstance(event, Queued):
            progress_bar.waiting(event.position)
        elif isinstance(event, Running):
            progress_bar.update_fraction(event.fraction)


def _copy_outputs(result: JobResult, output_dir: Path, stem: str, extension: str) -> list[Path]:
    written = []
    for name, source in result.outputs.items():
        target = output_file(output_dir, stem, name, extension)
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
