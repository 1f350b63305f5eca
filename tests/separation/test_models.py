"""Model loading: local repo folders, the HuggingFace cache, clear errors, devices."""

from __future__ import annotations

import time

import huggingface_hub.constants
import pytest
import torch

from separation.errors import DeviceError, ModelNotAvailableError
from separation.model import loading as models
from separation.model.loading import (
    ModelCache,
    is_available_locally,
    load_model,
    resolve_device,
)
from separation.model.random_models import (
    TINY_HTDEMUCS_KWARGS,
    build_htdemucs,
    save_hub_cache_model,
)

CPU = torch.device("cpu")


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty HuggingFace cache that the hub client will use instead of ~/.cache."""
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


def test_loads_a_bag_from_a_local_repo_folder(model_repo):
    bag = load_model("tinybag", repo=model_repo, device=CPU)
    assert len(bag.sub_models) == 2
    assert bag.weights == [[1.0, 0.0, 1.0, 0.5], [0.0, 1.0, 1.0, 0.5]]
    assert bag.sources == ["drums", "bass", "other", "vocals"]
    assert bag.samplerate == 44100


def test_six_source_model_keeps_all_sources(model_repo):
    six = load_model("tiny6", repo=model_repo, device=CPU)
    assert six.sources == ["drums", "bass", "other", "vocals", "guitar", "piano"]
    assert six.vocals_index == 3


def test_loads_from_the_huggingface_cache_offline(hub_cache):
    original = build_htdemucs(TINY_HTDEMUCS_KWARGS, seed=5)
    save_hub_cache_model(hub_cache, "htdemucs", [original])
    loaded = load_model("htdemucs", device=CPU)
    for name, tensor in original.state_dict().items():
        assert torch.equal(loaded.sub_models[0].state_dict()[name], tensor)
    assert is_available_locally("htdemucs")


def test_missing_weights_fail_fast_with_instructions(hub_cache):
    started = time.monotonic()
    with pytest.raises(ModelNotAvailableError) as caught:
        load_model("htdemucs_ft", device=CPU)
    assert time.monotonic() - started < 2.0
    message = str(caught.value)
    assert "karaoke-bot models download htdemucs_ft" in message
    assert "--model-repo" in message
    assert not is_available_locally("htdemucs_ft")


def test_unknown_name_in_a_repo_lists_what_is_there(model_repo):
    with pytest.raises(ModelNotAvailableError, match="available: tiny, tiny6, tinybag"):
        load_model("htdemucs", repo=model_repo, device=CPU)


def test_missing_repo_folder(tmp_path):
    with pytest.raises(ModelNotAvailableError, match="does not exist"):
        load_model("tiny", repo=tmp_path / "nowhere", device=CPU)


def test_download_offline_fails_with_one_clear_line(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelNotAvailableError, match="HF_HUB_OFFLINE"):
        models.download_model("htdemucs")


def test_download_fails_fast_when_the_hub_is_unreachable(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "https://127.0.0.1:9")
    started = time.monotonic()
    with pytest.raises(ModelNotAvailableError, match=r"cannot reach the HuggingFace hub"):
        models.download_model("htdemucs")
    assert time.monotonic() - started < 6.0


def test_each_model_is_loaded_once_per_cache(model_repo, monkeypatch):
    calls = []
    real_load = models.load_model

    def counting_load(*args, **kwargs):
        calls.append(args)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(models, "load_model", counting_load)
    cache = ModelCache()
    first = cache.get("tiny", repo=model_repo, device=CPU)
    second = cache.get("tiny", repo=model_repo, device=CPU)
    assert first is second
    assert len(calls) == 1
    assert cache.get("tinybag", repo=model_repo, device=CPU) is not first
    assert len(calls) == 2


def test_device_auto_and_cpu():
    assert resolve_device("cpu") == CPU
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error path")
@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_a_gpu_is_a_clear_error(spec):
    with pytest.raises(DeviceError, match="CUDA is not available"):
        resolve_device(spec)


def test_cuda_index_out_of_range(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(DeviceError, match="2 CUDA device"):
        resolve_device("cuda:2")


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "tpu:0"])
def test_unknown_device_names(spec):
    with pytest.raises(DeviceError):
        resolve_device(spec)


def test_cache_lookups_never_touch_the_network(hub_cache, monkeypatch):
    """An offline server must not stall on DNS while it loads weights from its cache."""
    import socket

    attempts = []

    def no_network(*args, **kwargs):
        attempts.append(args)  # libraries swallow the error, so record the attempt
        raise OSError("network access during a cache lookup")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    save_hub_cache_model(hub_cache, "htdemucs", [build_htdemucs(TINY_HTDEMUCS_KWARGS)])
    assert is_available_locally("htdemucs")
    assert not is_available_locally("htdemucs_6s")
    assert load_model("htdemucs", device=CPU).sources[-1] == "vocals"
    with pytest.raises(ModelNotAvailableError):
        load_model("htdemucs_6s", device=CPU)
    assert attempts == []
