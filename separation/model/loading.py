"""Loading Demucs models by name, once per process, on the chosen device.

Names resolve through the HuggingFace hub cache, the way ``demucs`` 4.1 itself does
(``demucs.hf``), but with ``local_files_only`` first: a bot must start offline and must
fail in milliseconds with instructions, not hang on a network timeout and then print a
traceback. A local folder in Demucs' ``--repo`` layout (``SIG.th`` files and ``NAME.yaml``
bags) is loaded through ``demucs.pretrained.get_model`` unchanged.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from separation.errors import DeviceError, ModelNotAvailableError
from separation.model.hub import check_hub_reachable, in_repo_folder, missing_weights_message
from separation.model.precision import Precision

logger = logging.getLogger(__name__)

KNOWN_MODELS: dict[str, str] = {
    "htdemucs": "Hybrid Transformer Demucs, the fast default (4 stems)",
    "htdemucs_ft": "fine-tuned bag of 4 htdemucs models: best quality, about 4x the time",
    "htdemucs_6s": "6 stems: adds guitar and piano",
    "mdx_extra": "Demucs v3 bag trained with extra data (MDX challenge)",
}
VOCALS = "vocals"


@runtime_checkable
class _DemucsModel(Protocol):
    """What every single Demucs model (not a bag of them) sets in its constructor.

    torch's stubs give an attribute a Module does not declare the type ``Tensor | Module``
    (``Module.__getattr__``); checking a loaded model against this protocol gives these
    their real types, and refuses a file that holds some other network.
    """

    sources: list[str]
    samplerate: int
    audio_channels: int
    segment: Fraction | float
    """Seconds of audio it takes at once; a ``Fraction`` for HTDemucs, used exactly as is."""


@dataclass
class LoadedModel:
    """A model (or bag of models) ready for inference, with what the engine needs."""

    name: str
    sub_models: list[nn.Module]
    segments: list[Fraction | float]
    """Per sub-model, the length in seconds of the segments it was trained on (Demucs'
    ``segment``, as a bag may have overridden it)."""
    weights: list[list[float]]
    """Per sub-model, per source weights (Demucs' bag weights; all ones for one model)."""
    sources: list[str]
    samplerate: int
    audio_channels: int
    device: torch.device
    precision: Precision = "fp32"
    """The forward pass's number format (``separation.model.precision``); set by the caller
    after loading, since the same weights serve every precision."""

    @property
    def vocals_index(self) -> int:
        return self.sources.index(VOCALS)


def resolve_device(spec: str) -> torch.device:
    """Turn ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` into a usable device.

    Raises:
        DeviceError: CUDA was asked for but is not available, or N is out of range.
    """
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device {spec!r} asked for, but CUDA is not available here "
                '(use device = "auto" or "cpu")'
            )
        device = torch.device(spec)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(
                f"device {spec!r} does not exist: {torch.cuda.device_count()} CUDA device(s) found"
            )
        return device
    raise DeviceError(f"unknown device {spec!r}: use auto, cpu, cuda or cuda:N")


def describe_device(device: torch.device) -> str:
    """One line for logs and ``check``: GPU name and memory, or CPU threads."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"{device} ({props.name}, {props.total_memory / 2**30:.1f} GiB)"
    return f"cpu ({torch.get_num_threads()} threads)"


def _hf_repo_id(name: str) -> tuple[str, str]:
    from demucs.hf import DEFAULT_NAMESPACE, hf_repo_name

    namespace = DEFAULT_NAMESPACE
    if "/" in name:
        namespace, name = name.split("/", 1)
    return f"{namespace}/{hf_repo_name(name)}", name


def _cached_file(repo_id: str, filename: str) -> str:
    """A file from the HuggingFace cache, without any network access.

    ``hf_hub_download(local_files_only=True)`` still fetches a user-agent registry from
    the hub (huggingface_hub 1.x), which can stall an offline server on DNS; this does not.

    Raises:
        FileNotFoundError: the file is not in the cache.
    """
    from huggingface_hub import try_to_load_from_cache

    path = try_to_load_from_cache(repo_id, filename)
    if not isinstance(path, str):
        raise FileNotFoundError(f"{repo_id}/{filename} is not in the HuggingFace cache")
    return path


def _fetch_hub_files(name: str, *, allow_download: bool) -> tuple[dict[str, Any], list[str]]:
    """The bag description of ``name`` and the paths of its weight files, from the
    HuggingFace cache, fetched from the hub first when ``allow_download``.

    Raises:
        ModelNotAvailableError: with a message that says how to obtain the weights.
    """
    import yaml
    from huggingface_hub import hf_hub_download

    repo_id, short_name = _hf_repo_id(name)

    def fetch(filename: str) -> str:
        if allow_download:
            return hf_hub_download(repo_id, filename, etag_timeout=10)
        return _cached_file(repo_id, filename)

    try:
        with open(fetch(f"{short_name}.yaml"), encoding="utf-8") as handle:
            bag: dict[str, Any] = yaml.safe_load(handle)
        paths = [fetch(f"{sig}.safetensors") for sig in bag["models"]]
    except Exception as exc:  # hub errors differ between versions; all mean "not here"
        detail = (
            "not in the local HuggingFace cache"
            if not allow_download
            else (f"download failed: {type(exc).__name__}")
        )
        raise ModelNotAvailableError(missing_weights_message(name, detail)) from exc
    return bag, paths


def _load_from_hub(name: str, *, allow_download: bool) -> nn.Module:
    from demucs.apply import BagOfModels
    from demucs.hf import load_safetensors_model

    bag, paths = _fetch_hub_files(name, allow_download=allow_download)
    models = [load_safetensors_model(path) for path in paths]
    return BagOfModels(models, bag.get("weights"), bag.get("segment"))


def _load_from_repo(name: str, repo: Path) -> nn.Module:
    from demucs.pretrained import get_model
    from demucs.repo import ModelLoadingError

    if not repo.is_dir():
        raise ModelNotAvailableError(_no_repo_folder(repo))
    try:
        model: nn.Module = get_model(name, repo=repo)  # it declares no return type
    except ModelLoadingError as exc:
        raise ModelNotAvailableError(f"{_not_in_repo(name, repo)}: {exc}") from exc
    return model


def _no_repo_folder(repo: Path) -> str:
    return f"model folder {repo} does not exist or is not a folder"


def _not_in_repo(name: str, repo: Path) -> str:
    available = sorted(p.stem for p in repo.glob("*.yaml"))
    return f"model '{name}' not found in {repo} (available: {', '.join(available) or 'none'})"


def load_model(
    name: str, *, repo: Path | None = None, device: torch.device, allow_download: bool = False
) -> LoadedModel:
    """Load ``name`` from ``repo`` (a local folder) or the HuggingFace cache onto ``device``.

    Raises:
        ModelNotAvailableError: with a message that says how to obtain the weights.
    """
    from demucs.apply import BagOfModels

    model = (
        _load_from_repo(name, repo)
        if repo is not None
        else _load_from_hub(name, allow_download=allow_download)
    )
    sub_models: list[nn.Module] = list(model.models) if isinstance(model, BagOfModels) else [model]
    described = [_as_demucs_model(name, sub_model) for sub_model in sub_models]
    first = described[0]  # a bag asserts that its models share sources, rate and channels
    if isinstance(model, BagOfModels):
        weights = [list(map(float, row)) for row in model.weights]
    else:
        weights = [[1.0] * len(first.sources)]
    for sub_model in sub_models:
        sub_model.to(device).eval()
    if VOCALS not in first.sources:
        raise ModelNotAvailableError(f"model '{name}' has no vocals source: {first.sources}")
    logger.info(
        "loaded model %s (%d sub-model(s), sources %s) on %s",
        name,
        len(sub_models),
        ",".join(first.sources),
        device,
    )
    return LoadedModel(
        name=name,
        sub_models=sub_models,
        segments=[sub_model.segment for sub_model in described],
        weights=weights,
        sources=list(first.sources),
        samplerate=int(first.samplerate),
        audio_channels=int(first.audio_channels),
        device=device,
    )


def _as_demucs_model(name: str, module: nn.Module) -> _DemucsModel:
    """``module`` with its Demucs attributes typed.

    Raises:
        ModelNotAvailableError: it lacks one (the file holds some other network).
    """
    if not isinstance(module, _DemucsModel):
        raise ModelNotAvailableError(
            f"model '{name}' is not a Demucs model: {type(module).__name__} lacks "
            "sources, samplerate, audio_channels or segment"
        )
    return module


class ModelCache:
    """Loads each (name, repo, device) once and hands the same object to every caller.

    Owned by the application (not a module global) so tests get a fresh one each time.
    """

    def __init__(self, *, allow_download: bool = False) -> None:
        self._allow_download = allow_download
        self._models: dict[tuple[str, str | None, str], LoadedModel] = {}
        self._lock = threading.Lock()

    def get(self, name: str, *, repo: Path | None, device: torch.device) -> LoadedModel:
        key = (name, str(repo.resolve()) if repo else None, str(device))
        with self._lock:
            if key not in self._models:
                self._models[key] = load_model(
                    name, repo=repo, device=device, allow_download=self._allow_download
                )
            return self._models[key]


def is_available_locally(name: str, repo: Path | None = None) -> bool:
    """Whether ``name`` can be loaded without network access (for ``models list``)."""
    if repo is not None:
        return in_repo_folder(name, repo)
    repo_id, short_name = _hf_repo_id(name)
    try:
        _cached_file(repo_id, f"{short_name}.yaml")
    except FileNotFoundError:
        return False
    return True


def download_model(name: str) -> None:
    """Fill the HuggingFace cache with ``name``'s weights (needs internet), checking on
    the hub that cached files are current.

    Raises:
        ModelNotAvailableError: the hub cannot be reached or has no such model.
    """
    check_hub_reachable()
    _fetch_hub_files(name, allow_download=True)


def ensure_weights(name: str, repo: Path | None, *, allow_download: bool, progress: bool) -> None:
    """Make sure ``name``'s weights are on this machine before anything is started.

    The first ``run`` or ``separate`` on a machine with internet fetches the model once
    (huggingface_hub's own progress bar when ``progress``), as the Demucs CLI does; later
    starts find it in the cache and never touch the network. A local ``repo`` folder is
    never downloaded into: what is missing there is said at once.

    Raises:
        ModelNotAvailableError: the weights are missing and downloading is disabled
            (``model.allow_download = false`` or ``HF_HUB_OFFLINE``), the hub cannot be
            reached, or it has no such model; one line that says how to get them.
    """
    from huggingface_hub import constants
    from huggingface_hub.utils.tqdm import (
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )

    if repo is not None:  # a local folder: said now, before the bot creates anything
        if not repo.is_dir():
            raise ModelNotAvailableError(_no_repo_folder(repo))
        if not is_available_locally(name, repo):
            raise ModelNotAvailableError(_not_in_repo(name, repo))
        return
    if is_available_locally(name):
        return
    if not allow_download or constants.HF_HUB_OFFLINE:
        why = "model.allow_download = false" if not allow_download else "HF_HUB_OFFLINE is set"
        raise ModelNotAvailableError(missing_weights_message(name, f"not downloaded; {why}"))
    logger.info("model %s: downloading its weights once (to %s)", name, constants.HF_HUB_CACHE)
    check_hub_reachable()
    was_disabled = are_progress_bars_disabled()
    if not progress:
        disable_progress_bars()
    try:
        _fetch_hub_files(name, allow_download=True)
    finally:
        if not was_disabled:
            enable_progress_bars()
