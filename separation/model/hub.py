"""The Hugging Face hub, seen without torch: is it reachable, and what to say when the
weights are missing.

Kept apart from ``loading.py`` (which imports torch) so that the command line can refuse
a song whose weights cannot be had in a fraction of a second, before torch is imported
and before any folder is created.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from separation.errors import ModelNotAvailableError


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
