"""``karaoke-bot separate INPUT...``: songs on disk to instrumental and vocal files.

The inputs go through the same worker pool as the bot's users, all at once: their
segments share forward passes, a song separated before comes from the result cache
(``<data_dir>/cache`` unless ``pool.cache_dir`` says otherwise; with neither configured,
the user's cache folder: see ``separate_prep.place_cache``), and the same input given
twice runs once. Outputs are copied out of the cache into OUTDIR.

Everything that can be checked without torch is checked before it is imported
(``separate_prep``): each flag by the setting it overrides, every input path, the
output folder, the model's weights; nothing is created until they pass. Two inputs
with the same name (``a/song.mp3 b/song.ogg``) get distinct output names
(``song - ...`` and ``song (2) - ...``), and a note on stderr says so.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli import messages
from bot.cli.messages import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError
from bot.cli.separate_prep import (
    HelpAction,
    PlannedInput,
    cache_dir,
    check_output_dir,
    create_output_dir,
    folder_bytes,
    guide_level,
    input_problems,
    output_file,
    place_cache,
    plan_inputs,
    weights_problem,
)
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
        description="Writes OUTDIR/<input stem> - instrumental.<ext> and - vocals.<ext>; "
        "with --stems four, - drums, - bass, - other and - vocals instead (no instrumental). "
        "With --key, --tempo or --guide the names say what was rendered "
        "('<stem> - instrumental (key -2).<ext>'). Several inputs are separated "
        "together; an input whose name another already has gets '<stem> (2)'. Flags are "
        "checked like the config file's settings, and inputs before the model loads.",
        add_help=False,
    )
    parser.add_argument("-h", "--help", action=HelpAction, help="show this help message and exit")
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT")
    parser.add_argument("-o", "--output-dir", type=Path, default=Path("."), metavar="OUTDIR")
    parser.add_argument("--model", help=messages.model_help(None))
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
        "--guide",
        type=guide_level,
        metavar="DB",
        help="vocals mixed into the instrumental, -30 to -6, or off (the default)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        help="segments per forward pass (0: measured at start on a GPU, 1 on CPU)",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="neither read nor keep results in the result cache (every input runs the model)",
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

    Paths, karaoke controls and the model's weights are checked before torch is even
    imported: a typo or a missing download costs nothing, and nothing is created.
    """
    controls = render_options(args)
    problems = input_problems(args.inputs)
    for problem in problems:
        messages.error(problem)
    if problems:
        messages.error(messages.nothing_separated(len(problems)))
        return EXIT_USAGE
    check_output_dir(args.output_dir)
    if not args.verbose:  # a user sees the progress bars and the files; the rest is -v
        for handler in logging.getLogger().handlers:
            handler.setLevel(max(logging.WARNING, handler.level))
    inputs = plan_inputs(args.inputs)

    if settings.backend.kind == "distributed":
        from bot.distributed.setup import distributed_backend

        # The songs go to the fleet's workers (and their weights); the queue's limits
        # apply as to any user.
        if args.no_cache:
            raise UsageError(messages.NO_CACHE_IN_A_FLEET)
        create_output_dir(args.output_dir)
        return asyncio.run(
            _separate_all(
                inputs, args.output_dir, settings, distributed_backend(settings), controls
            )
        )
    missing = weights_problem(settings.model)
    if missing is not None:
        raise UsageError(missing)
    scratch = place_cache(settings, no_cache=args.no_cache)
    try:
        return _separate_locally(inputs, args.output_dir, settings, controls, scratch)
    finally:
        if scratch is not None:
            scratch.cleanup()


def _separate_locally(
    inputs: list[PlannedInput],
    output_dir: Path,
    settings: Settings,
    controls: RenderOptions,
    scratch: tempfile.TemporaryDirectory[str] | None,
) -> int:
    """Run the inputs through a pool of this process; then say where the cache is."""
    from bot.cli.run import ensure_configured_weights
    from bot.process.backend import build_pool, configure_torch, pool_config  # torch: only here

    ensure_configured_weights(settings)  # fetched once on first use, before any folder
    configure_torch(settings)
    config = pool_config(settings)
    # Every input is this one user's: the pool's per-user and queue limits must admit all.
    config = dataclasses.replace(
        config,
        max_jobs_per_user=max(config.max_jobs_per_user, len(inputs)),
        max_queued_jobs=max(config.max_queued_jobs, len(inputs)),
        warm_up=False,
    )
    create_output_dir(output_dir)
    code = asyncio.run(
        _separate_all(inputs, output_dir, settings, build_pool(settings, config), controls)
    )
    if scratch is None:
        folder = cache_dir(settings)
        pool = settings.pool
        messages.status(
            messages.cache_summary(
                folder, folder_bytes(folder), pool.cache_max_bytes, pool.cache_max_age_hours
            )
        )
    return code


async def _separate_all(
    inputs: list[PlannedInput],
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
    item: PlannedInput,
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
        return await asyncio.to_thread(
            _copy_outputs, result, output_dir, item.stem, spec.extension, controls
        )
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


def _copy_outputs(
    result: JobResult, output_dir: Path, stem: str, extension: str, controls: RenderOptions
) -> list[Path]:
    written = []
    for name, source in result.outputs.items():
        target = output_file(output_dir, stem, name, extension, controls)
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
