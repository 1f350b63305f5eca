"""What ``karaoke-bot separate`` checks and decides before any work, without torch.

Its ``--help`` and ``--guide`` parsing live here too, beside the other checks.

Loading torch takes seconds, so everything that can fail without it is checked first:
every input path, the output folder, the model's weights. Nothing is created on disk
until all of that has passed (a refused command leaves the folder as it found it). The
names of the output files and the place of the result cache are decided here too.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import tempfile
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs

from bot.cli import messages
from bot.cli.messages import UsageError
from separation.audio.render_options import RenderOptions
from separation.errors import InvalidRenderOptionError, ModelNotAvailableError
from separation.model.hub import (
    check_hub_reachable,
    in_hub_cache,
    in_repo_folder,
    missing_weights_message,
)

if TYPE_CHECKING:  # pydantic comes with these: `--help` and usage errors must not wait
    from bot.settings import Settings
    from bot.settings.model import ModelSettings

APP_NAME = "karaoke-bot"
"""Where Demucs publishes its models on the HuggingFace hub (``demucs.hf``)."""


BUILT_IN_MODEL = "htdemucs"
"""``model.name``'s default (``bot.settings.model.ModelSettings``; a test keeps the two
equal), here so that ``separate --help`` loads no pydantic and no store."""


def configured_model(config: Path | None) -> str:
    """The model the config in effect names, for ``--help``: read with tomllib alone.

    The file is found as ``bot.settings.resolve_config_path`` finds it (``--config``,
    else ``$KARAOKE_CONFIG``, else ``./config.toml``); no environment variable overrides
    ``model.name``. A file that cannot be read leaves the built-in default named: the
    command itself reports it when it runs.
    """
    from_env = os.environ.get("KARAOKE_CONFIG")
    path = config or (Path(from_env) if from_env else Path("config.toml"))
    try:
        model = tomllib.loads(path.read_text(encoding="utf-8")).get("model")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return BUILT_IN_MODEL
    name = model.get("name") if isinstance(model, dict) else None
    return name if isinstance(name, str) and name else BUILT_IN_MODEL


class HelpAction(argparse.Action):
    """``--help`` that names the default model of the config in effect.

    The parser is built before any config is read; the help is printed while parsing, so
    the config (``--config`` typed before ``--help``, else ``$KARAOKE_CONFIG`` or
    ``./config.toml``) is read here, and a config that cannot be read leaves the
    built-in default named.
    """

    def __init__(self, option_strings: list[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        name = configured_model(getattr(namespace, "config", None))
        for action in parser._actions:
            if "--model" in action.option_strings:
                action.help = messages.model_help(name)
        parser.print_help()
        parser.exit()


def guide_level(text: str) -> float | None:
    """``--guide``'s value: a level in dB, or ``off`` (no guide vocal, as without the flag).

    Raises:
        argparse.ArgumentTypeError: neither (argparse prints it as a usage error).
    """
    if text.strip().casefold() == "off":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(messages.bad_guide(text)) from None


def render_options(args: argparse.Namespace) -> RenderOptions:
    """The karaoke controls asked for (identity when none).

    Raises:
        UsageError: a value out of range, in the same sentence a chat user would get.
    """
    fields = {"key": args.key, "tempo": args.tempo, "guide_db": args.guide}
    try:
        return RenderOptions(**{name: value for name, value in fields.items() if value is not None})
    except InvalidRenderOptionError as exc:
        raise UsageError(exc.user_message) from None


_LINK = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]{0,15}://")
"""An input that starts like a URL is a link, whatever its scheme (``bot.links.classify``
then takes http(s) only, so ``ftp://...`` is refused as a link, not looked for on disk)."""


def input_argument(text: str) -> Path | str:
    """An INPUT as typed: a link stays text (a ``Path`` would fold its ``//``), anything
    else is a file's path."""
    return text if _LINK.match(text) else Path(text)


def input_problems(inputs: list[Path | str]) -> list[str]:
    """What is wrong with each input path that cannot be separated at all (links are
    checked when they are fetched: ``bot.cli.separate_links``)."""
    problems = []
    for path in inputs:
        if isinstance(path, str):
            continue
        if path.is_dir():
            problems.append(messages.is_a_directory(path))
        elif not path.exists():
            problems.append(messages.no_such_file(path))
        elif not os.access(path, os.R_OK):
            problems.append(messages.not_readable(path, "permission denied"))
    return problems


@dataclasses.dataclass(frozen=True)
class PlannedInput:
    path: Path
    """As typed: named in messages (a link's :attr:`FetchedInput.label`)."""
    resolved: Path
    stem: str
    """What its output files are named after, distinct within one run."""


@dataclasses.dataclass(frozen=True)
class FetchedInput:
    """A link's media, fetched into the run's private folder (``bot.cli.separate_links``)."""

    label: Path
    """``<site>/<name>.<ext>``: what messages call it, never the link's raw text."""
    file: Path
    stem: str
    """Its output files' name: the site's title, else the link's last path segment,
    made safe for a file name."""


def plan_inputs(inputs: list[Path | FetchedInput]) -> list[PlannedInput]:
    """One entry per distinct file, each with output names no other input uses.

    The same file given twice runs once. ``a/song.mp3 b/song.ogg`` would otherwise
    write the same two files twice, so the second becomes ``song (2)`` (with a note).
    Case is ignored, since ``Song`` and ``song`` are one file on macOS and Windows.
    """
    planned: dict[Path, PlannedInput] = {}
    owners: dict[str, Path] = {}
    for item in inputs:
        if isinstance(item, FetchedInput):
            path, resolved, stem = item.label, item.file, item.stem
        else:
            path, resolved, stem = item, item.resolve(), item.stem
        if resolved in planned:
            continue
        if stem.casefold() in owners:
            number = 2
            while f"{stem} ({number})".casefold() in owners:
                number += 1
            first, stem = owners[stem.casefold()], f"{stem} ({number})"
            messages.note(messages.same_name(path, first, stem))
        owners[stem.casefold()] = path
        planned[resolved] = PlannedInput(path, resolved, stem)
    return list(planned.values())


def check_output_dir(output_dir: Path) -> None:
    """OUTDIR can be a folder (it need not exist yet); nothing is created.

    Raises:
        UsageError: it is an existing file.
    """
    if output_dir.exists() and not output_dir.is_dir():
        raise UsageError(messages.output_is_a_file(output_dir))


def create_output_dir(output_dir: Path) -> None:
    """Create OUTDIR (and its parents), once there is work to do.

    Raises:
        UsageError: it cannot be created.
    """
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(messages.output_not_usable(output_dir, exc.strerror or str(exc))) from None


def output_file(
    output_dir: Path,
    stem: str,
    name: str,
    extension: str,
    controls: RenderOptions,
    *,
    sound: str | None = None,
) -> Path:
    """``song - instrumental (key -2).mp3``: named by what was rendered into that file.

    Experiments with the controls then sit side by side instead of overwriting each
    other; the plain outputs keep their plain names. A guide vocal changes only the
    instrumental, so only the instrumental's name mentions it, and the karaoke video's,
    whose ``sound`` is the instrumental's (``song - karaoke (guide -12 dB).mp4``).
    """
    change = controls.file_suffix(sound or name)
    suffix = f" ({change})" if change else ""
    return output_dir / f"{stem} - {name}{suffix}.{extension}"


def weights_problem(model: ModelSettings) -> str | None:
    """Why ``model`` cannot be loaded on this machine, found without importing torch.

    Mirrors where ``separation.model.loading`` looks: the ``--repo`` folder, else the
    HuggingFace cache (unless downloads are allowed and the hub is not switched off:
    then ``separation.model.loading.ensure_weights`` fetches them before any work).
    """
    name, repo = model.name, model.repo
    if repo is not None:
        if not repo.is_dir():
            return messages.model_folder_missing(repo)
        if in_repo_folder(name, repo):
            return None
        return messages.model_not_in_folder(name, repo, sorted(p.stem for p in repo.glob("*.yaml")))
    from huggingface_hub import constants  # no torch in it

    if in_hub_cache(name):
        return None
    if model.allow_download and not constants.HF_HUB_OFFLINE:
        try:  # fetched before any work; an offline machine is told now, not after torch
            check_hub_reachable()
        except ModelNotAvailableError as exc:
            return missing_weights_message(name, str(exc))
        return None
    return messages.weights_missing(name)


def place_cache(settings: Settings, *, no_cache: bool) -> tempfile.TemporaryDirectory[str] | None:
    """Point the pool's result cache where this command should keep it.

    With no data folder or cache folder configured, the command line keeps its working
    files in the user's cache folder (``~/.cache/karaoke-bot`` on Linux), not in a hidden
    ``./data`` under whatever folder it runs in. ``--no-cache`` gives the run a
    throw-away cache (returned, for the caller to remove): nothing is read from or
    written to the real one.
    """
    if "data_dir" not in settings.general.model_fields_set and settings.pool.cache_dir is None:
        settings.general.data_dir = platformdirs.user_cache_path(APP_NAME)
    if not no_cache:
        return None
    scratch = tempfile.TemporaryDirectory(prefix="karaoke-nocache-")
    settings.pool.cache_dir = Path(scratch.name)
    return scratch


def cache_dir(settings: Settings) -> Path:
    """Where the pool keeps its results (as ``bot.process.backend.pool_config`` puts it)."""
    return settings.pool.cache_dir or settings.general.data_dir / "cache"


def folder_bytes(folder: Path) -> int:
    """Everything in ``folder`` on disk, files only (it may not exist)."""
    total = 0
    for root, _dirs, files in os.walk(folder):
        for file_name in files:
            try:
                total += (Path(root) / file_name).stat().st_size
            except OSError:  # evicted while we counted
                continue
    return total
