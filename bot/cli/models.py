"""``karaoke-bot models list|download|make-random``.

``separation.model.loading`` brings torch with it, so each command imports it itself (the CLI's
``--help`` must not wait for torch).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli import messages
from bot.cli.messages import EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:  # pydantic: imported when a command runs, not for --help
    from bot.settings import Settings


def add_models_command(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "models", help="list or download Demucs models, or make a random one for tests"
    )
    actions = parser.add_subparsers(dest="models_action", required=True)
    listing = actions.add_parser("list", help="known models and whether they are available here")
    listing.add_argument(
        "--repo",
        type=Path,
        metavar="DIR",
        help="also list the models in this folder (as written by make-random --repo DIR)",
    )
    listing.set_defaults(func=list_models)
    download = actions.add_parser("download", help="fetch a model into the HuggingFace cache")
    download.add_argument(
        "name", help="a known model (see `models list`), or NAMESPACE/NAME on the HuggingFace hub"
    )
    download.set_defaults(func=download_command)
    random = actions.add_parser(
        "make-random",
        help="save a randomly initialised model (smoke tests without weights: output is noise)",
    )
    random.add_argument("name", help="model name to save it under")
    random.add_argument(
        "--repo",
        type=Path,
        required=True,
        metavar="DIR",
        help="model folder to write (use it with --model-repo)",
    )
    random.add_argument(
        "--architecture",
        choices=["htdemucs", "tiny"],
        default="tiny",
        help="htdemucs: the real architecture (speed tests); tiny: fast",
    )
    random.set_defaults(func=make_random_command)


def list_models(args: argparse.Namespace, settings: Settings) -> int:
    """Print every known model, and those in the configured folder and in ``--repo``.

    ``make-random NAME --repo DIR`` tells the user to pass the same folder here, so a
    model just made is seen without editing the config to point at its folder.
    """
    from separation.model.loading import KNOWN_MODELS, is_available_locally

    if args.repo is not None and not args.repo.is_dir():
        messages.error(messages.not_a_model_folder(args.repo))
        return EXIT_USAGE
    folders = dict.fromkeys(repo for repo in (settings.model.repo, args.repo) if repo is not None)
    models: dict[str, tuple[str, Path | None]] = {
        name: (description, None) for name, description in KNOWN_MODELS.items()
    }
    for folder in folders:
        if folder.is_dir():
            for path in sorted(folder.glob("*.yaml")):
                models[path.stem] = (f"from {folder}", folder)
    for name, (description, folder) in models.items():
        marker = "available" if is_available_locally(name, folder) else "not downloaded"
        default = " (configured)" if name == settings.model.name else ""
        print(f"{name:<14} {marker:<15} {description}{default}")
    return EXIT_OK


def make_random_command(args: argparse.Namespace, settings: Settings) -> int:
    """Write a random model in Demucs' --repo layout, loadable like real weights."""
    from separation.model.random_models import (
        HTDEMUCS_KWARGS,
        TINY_HTDEMUCS_KWARGS,
        build_htdemucs,
        save_repo_model,
    )

    kwargs = HTDEMUCS_KWARGS if args.architecture == "htdemucs" else TINY_HTDEMUCS_KWARGS
    try:
        save_repo_model(args.repo, args.name, [build_htdemucs(kwargs)])
    except OSError as exc:  # --repo is a file, read-only, on a full disk...
        messages.error(messages.cannot_write_model(args.repo, exc.strerror or str(exc)))
        return EXIT_USAGE
    print(
        f"{args.name}: random {args.architecture} model saved in {args.repo} "
        f"(use --model {args.name} --model-repo {args.repo}; its output is noise)"
    )
    return EXIT_OK


def download_command(args: argparse.Namespace, settings: Settings) -> int:
    """Fill the HuggingFace cache with a model's weights.

    A name that is neither known nor NAMESPACE/NAME is refused before the network is
    tried: "cannot reach the hub" would send the operator after the wrong problem.
    """
    from separation.errors import ModelNotAvailableError
    from separation.model.loading import KNOWN_MODELS, download_model

    if args.name not in KNOWN_MODELS and "/" not in args.name:
        messages.error(messages.unknown_model(args.name, KNOWN_MODELS))
        return EXIT_USAGE
    try:
        download_model(args.name)
    except ModelNotAvailableError as exc:
        messages.error(messages.cannot_download(args.name, str(exc)))
        return EXIT_USAGE  # no network or no such model on the hub: the environment's
    print(f"{args.name}: downloaded to the HuggingFace cache")
    return EXIT_OK
