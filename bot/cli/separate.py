"""``karaoke-bot separate INPUT...``: songs on disk or links to instrumental and vocal files.

The inputs go through the same worker pool as the bot's users, all at once: their
segments share forward passes, a song separated before comes from the result cache
(``<data_dir>/cache`` unless ``pool.cache_dir`` says otherwise; with neither configured,
the user's cache folder: see ``separate_prep.place_cache``), and the same input given
twice runs once. Outputs are copied out of the cache into OUTDIR; with ``--video``, a
karaoke video of each song too (``separate_video``), rendered from the same stems.

Everything that can be checked without torch is checked before it is imported
(``separate_prep``, ``video_prep``): each flag by the setting it overrides, the lyrics
file, every input path, the output folder, the model's weights; nothing is created
until they pass. Then links are fetched (``separate_links``), before the model loads.
Two inputs with the same name (``a/song.mp3 b/song.ogg``) get distinct output names
(``song - ...`` and ``song (2) - ...``), and a note on stderr says so.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli import messages
from bot.cli.messages import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError
from bot.cli.progress import ProgressBar
from bot.cli.separate_links import fetched_links
from bot.cli.separate_prep import (
    HelpAction,
    PlannedInput,
    cache_dir,
    check_output_dir,
    create_output_dir,
    folder_bytes,
    guide_level,
    input_argument,
    input_problems,
    output_file,
    place_cache,
    plan_inputs,
    render_options,
    weights_problem,
)
from bot.cli.separate_video import VideoNotMade, karaoke_video
from bot.cli.video_prep import VideoPlan, add_video_arguments, video_plan
from separation.errors import AudioInputError, SeparationError

if TYPE_CHECKING:  # torch comes with these; they are imported when a song is separated
    from bot.settings import Settings
    from separation.audio.encode import EncodingSpec
    from separation.audio.render_options import RenderOptions
    from separation.jobs import JobHandle, JobResult, RenderingBackend, SeparationBackend

logger = logging.getLogger(__name__)

CLI_USER = "cli"
INPUT_HELP = "an audio or video file, or an http(s) link to one or to a site's song"

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
    "lrclib": ("lyrics", "lrclib"),
}


def add_separate_command(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "separate",
        help="separate songs into instrumental and vocals",
        description="Writes OUTDIR/<input stem> - instrumental.<ext> and - vocals.<ext>; "
        "with --stems four, - drums, - bass, - other and - vocals instead (no instrumental). "
        "With --key, --tempo or --guide the names say what was rendered "
        "('<stem> - instrumental (key -2).<ext>'). With --video, also <stem> - karaoke.mp4: "
        "the instrumental with the words on screen. Several inputs are separated "
        "together; an input whose name another already has gets '<stem> (2)'. Flags are "
        "checked like the config file's settings, and inputs before the model loads.",
        add_help=False,
    )
    parser.add_argument("-h", "--help", action=HelpAction, help="show this help message and exit")
    parser.add_argument("inputs", nargs="+", type=input_argument, metavar="INPUT", help=INPUT_HELP)
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
    add_video_arguments(parser)
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
    parser.set_defaults(  # over when it returns: the process ends at once (``exit_now``)
        func=separate_command, apply_overrides=apply_separate_overrides, exit_when_done=True
    )


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


@dataclasses.dataclass(frozen=True)
class Asked:
    """What every input gets besides its separation, checked before any work."""

    controls: RenderOptions
    """The karaoke controls (identity when none), for the audio files and the video."""
    video: VideoPlan | None = None


@dataclasses.dataclass(frozen=True)
class Written:
    """One input's files, and why its video is missing when it was asked for and is."""

    files: list[Path]
    video_problem: str | None = None


def separate_command(args: argparse.Namespace, settings: Settings) -> int:
    """Separate every input; one clear line per failure; exit 1 if any failed.

    Paths, karaoke controls, the lyrics file and the model's weights are checked before
    torch is even imported: a typo or a missing download costs nothing, and nothing is
    created. An input whose audio files are written but whose video is not counts as
    failed (exit 1): the paths of what was written are printed all the same.
    """
    asked = Asked(render_options(args), video_plan(args, settings))
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
    distributed = settings.backend.kind == "distributed"
    if distributed and args.no_cache:
        raise UsageError(messages.NO_CACHE_IN_A_FLEET)
    missing = None if distributed else weights_problem(settings.model)
    if missing is not None:
        raise UsageError(missing)
    with fetched_links(args.inputs, settings, verbose=args.verbose) as fetched:
        if not fetched.inputs:
            return EXIT_FAILED
        code = _separate(plan_inputs(fetched.inputs), args, settings, asked)
    return EXIT_FAILED if fetched.refused else code


def _separate(
    inputs: list[PlannedInput], args: argparse.Namespace, settings: Settings, asked: Asked
) -> int:
    """The inputs (files by now) through the fleet, or through a pool of this process."""
    if settings.backend.kind == "distributed":
        from bot.distributed.setup import distributed_backend

        # The songs go to the fleet's workers (and their weights); the queue's limits
        # apply as to any user.
        create_output_dir(args.output_dir)
        backend = distributed_backend(settings)
        return asyncio.run(_separate_all(inputs, args.output_dir, settings, backend, asked))
    scratch = place_cache(settings, no_cache=args.no_cache)
    try:
        return _separate_locally(inputs, args.output_dir, settings, asked, scratch)
    finally:
        if scratch is not None:
            scratch.cleanup()


def _separate_locally(
    inputs: list[PlannedInput],
    output_dir: Path,
    settings: Settings,
    asked: Asked,
    scratch: tempfile.TemporaryDirectory[str] | None,
) -> int:
    """Run the inputs through a pool of this process; then say where the cache is."""
    from bot.cli.one_shot import one_shot_pool_config
    from bot.cli.run import ensure_configured_weights
    from bot.process.backend import build_pool, configure_torch  # torch: only here

    ensure_configured_weights(settings)  # fetched once on first use, before any folder
    configure_torch(settings)
    config = one_shot_pool_config(settings, len(inputs))
    create_output_dir(output_dir)
    code = asyncio.run(
        _separate_all(inputs, output_dir, settings, build_pool(settings, config), asked)
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
    asked: Asked,
) -> int:
    await backend.start()
    try:
        outcomes = await asyncio.gather(
            *(
                _separate_one(backend, item, output_dir, settings, position, asked)
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
            for path in outcome.files:
                print(path)
            if outcome.video_problem is not None:
                failures += 1
                messages.error(messages.video_failed(item.path, outcome.video_problem))
    return EXIT_FAILED if failures else EXIT_OK


async def _separate_one(
    pool: SeparationBackend,
    item: PlannedInput,
    output_dir: Path,
    settings: Settings,
    position: int,
    asked: Asked,
) -> Written:
    """Submit one input, follow its progress, copy its outputs (re-rendered with the
    karaoke controls, if any), then make its video, if asked; returns what was written."""
    from bot.process.wiring import encoding_spec
    from separation.jobs import RenderingBackend, SeparationRequest

    assert isinstance(pool, RenderingBackend), "both backends render"
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
    progress_bar = ProgressBar(item.path.name, position)
    try:
        await _follow(handle, progress_bar)
        separated = await handle.result()
    finally:
        progress_bar.close()
    try:  # the separation stays pinned until the video, too, is rendered from its stems
        written = Written(await _write_audio(pool, separated, output_dir, item, asked, spec))
        if asked.video is None:
            return written
        try:
            video = await karaoke_video(
                pool, separated, item, output_dir, settings.lyrics, asked.controls, asked.video
            )
        except VideoNotMade as exc:
            return dataclasses.replace(written, video_problem=str(exc))
        return Written([*written.files, video])
    finally:
        separated.release()  # the cache may evict its copy; a remote backend's is deleted


async def _write_audio(
    pool: RenderingBackend,
    separated: JobResult,
    output_dir: Path,
    item: PlannedInput,
    asked: Asked,
    spec: EncodingSpec,
) -> list[Path]:
    """Copy the audio outputs into OUTDIR, first re-rendered with the karaoke controls
    (by this process's pool, or by a worker of the fleet) when there are any."""
    from separation.cpu_budget import Lane
    from separation.jobs import RenderRequest

    controls = asked.controls
    result = separated
    if not controls.is_identity:
        request = RenderRequest(
            separated.cache_key, controls, encoding=spec, lane=Lane.FIRST_RESULT
        )
        result = await pool.render(request)
    try:
        return await asyncio.to_thread(
            _copy_outputs, result, output_dir, item.stem, spec.extension, controls
        )
    finally:
        if result is not separated:
            result.release()


async def _follow(handle: JobHandle, progress_bar: ProgressBar) -> None:
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
