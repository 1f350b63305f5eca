"""The model's weights, seen without torch: are they in a ``--repo`` folder or the
Hugging Face cache, is the hub reachable, and what to say when they are missing.

Kept apart from ``loading.py`` (which imports torch) so that the command line can refuse
a song whose weights cannot be had in a fraction of a second, before torch is imported
and before any folder is created.
"""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

from separation.errors import ModelNotAvailableError

DEMUCS_NAMESPACE = "adefossez"
"""Where Demucs' pretrained models live on the hub (``demucs.hf.DEFAULT_NAMESPACE``)."""


def missing_weights_message(name: str, detail: str) -> str:
    return (
        f"weights for model '{name}' are not available on this machine ({detail}). "
        f"Fetch them on a machine with internet access with "
        f"`karaoke-bot models download {name}` (they go to the HuggingFace cache, "
        f"~/.cache/huggingface or $HF_HOME; copy that folder over), or point "
        f"`model.repo` / `--model-repo` at a folder in Demucs' --repo layout "
        f"(SIG.th files and {name}.yaml)."
    )


def check_hub_reachable(timeout: float = 5.0) -> None:
    """Fail in seconds when the hub cannot be reached.

    huggingface_hub retries unreachable hosts with back-off for about a minute; an
    operator on an offline machine should get one clear line instead.

    Raises:
        ModelNotAvailableError: offline mode is set, or the hub's host does not answer.
    """
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise ModelNotAvailableError("HF_HUB_OFFLINE is set: downloads are disabled")
    endpoint = urlsplit(constants.ENDPOINT)
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise ModelNotAvailableError(
            f"cannot reach the HuggingFace hub ({host}): {exc}. Download the weights on a "
            "machine with internet access and copy the HuggingFace cache folder over."
        ) from exc


def in_repo_folder(name: str, repo: Path) -> bool:
    """``name`` is in a folder of Demucs' ``--repo`` layout (``name.yaml`` or ``name*.th``)."""
    return (repo / f"{name}.yaml").is_file() or any(repo.glob(f"{name}*.th"))


def in_hub_cache(name: str) -> bool:
    """The bag file of ``name`` and every model file it lists are in the HuggingFace
    cache (what the loader reads offline), found without torch."""
    import yaml
    from huggingface_hub import try_to_load_from_cache

    repo_id, bag_file = hub_location(name)
    bag_path = try_to_load_from_cache(repo_id, bag_file)
    if not isinstance(bag_path, str):
        return False
    try:
        with open(bag_path, encoding="utf-8") as handle:
            signatures = yaml.safe_load(handle)["models"]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return False  # the loader will say what is wrong with it
    return all(
        isinstance(try_to_load_from_cache(repo_id, f"{sig}.safetensors"), str) for sig in signatures
    )


def hub_location(name: str) -> tuple[str, str]:
    """The hub repository and bag file of ``name``, as ``demucs.hf.hf_repo_name`` names
    them (importing that module imports torch; a test keeps the two in step)."""
    namespace, short = name.split("/", 1) if "/" in name else (DEMUCS_NAMESPACE, name)
    if short == "htdemucs":
        repo_name = "HTDemucs"
    elif short.startswith("htdemucs_"):
        repo_name = "HTDemucs-" + short.removeprefix("htdemucs_")
    else:
        repo_name = "Demucs-" + short
    return f"{namespace}/{repo_name}", f"{short}.yaml"
