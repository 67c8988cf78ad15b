"""Load a processor and model with transformers' Auto classes; errors say what to do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import PipelineConfig
from .errors import ModelLoadError
from .interfaces import Backend


def looks_local(model: str) -> bool:
    """Whether `model` names a folder rather than a hub id (`org/name`)."""
    return model.startswith(("/", ".", "~")) or model.count("/") > 1 or "\\" in model


def check_local_model(model: str) -> None:
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(f"model {model} is a file: pass the folder that holds config.json")
        if not (path / "config.json").is_file():
            raise ModelLoadError(
                f"{model} is not a model folder (it has no config.json): pass a folder made by "
                "save_pretrained, or a hub id such as llava-hf/llava-interleave-qwen-0.5b-hf"
            )
    elif looks_local(model):
        raise ModelLoadError(f"model folder {model} does not exist: check the path")


UNREACHABLE = (
    "cannot load {model!r}: the model hub ({endpoint}) cannot be reached and the model is not "
    "in the local cache; download it where there is network, or pass a local folder made with "
    "save_pretrained"
)


def check_hub(model: str, revision: str | None, timeout: float = 5.0) -> None:
    """Fail at once, not after minutes of retries, when a hub model is not cached and the hub
    cannot be reached (or offline mode is on)."""
    if looks_local(model) or Path(model).expanduser().exists():
        return
    from huggingface_hub import constants, try_to_load_from_cache

    try:
        if isinstance(try_to_load_from_cache(model, "config.json", revision=revision), str):
            return
    except Exception:  # a malformed id: let from_pretrained say what is wrong
        return
    endpoint = constants.ENDPOINT
    if constants.HF_HUB_OFFLINE or not reachable(endpoint, timeout):
        raise ModelLoadError(UNREACHABLE.format(model=model, endpoint=endpoint))


def reachable(url: str, timeout: float) -> bool:
    """Whether a TCP connection to the URL's host opens within `timeout` seconds."""
    import socket
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def explain(model: str, exc: Exception) -> str:
    """One line for a failed `from_pretrained`."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    lowered = str(exc).lower()
    if any(w in lowered for w in ("couldn't connect", "offline", "connection", "resolve")):
        return (
            f"cannot load {model!r}: the model hub cannot be reached and the model is not "
            "in the local cache; download it where there is network, or pass a local "
            "folder made with save_pretrained"
        )
    if (
        "not a valid model identifier" in lowered
        or "repository not found" in lowered
        or "404" in lowered
    ):
        return (
            f"cannot load {model!r}: no such model on the hub (or it is private); check the "
            "id, or pass a local folder"
        )
    if "trust_remote_code" in lowered:
        return (
            f"cannot load {model!r}: it needs its own code; set trust_remote_code: true if "
            "you trust it"
        )
    return f"cannot load {model!r}: {text}"


def load(config: PipelineConfig, backend: Backend, dtype: str) -> tuple[Any, Any]:
    """The processor and model for `config`, placed on `backend` in `dtype`."""
    check_local_model(config.model)
    check_hub(config.model, config.revision)
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    common = {"revision": config.revision, "trust_remote_code": config.trust_remote_code}
    try:
        processor = AutoProcessor.from_pretrained(config.model, **common)
    except Exception as exc:
        raise ModelLoadError(explain(config.model, exc)) from None
    if not hasattr(processor, "tokenizer"):
        raise ModelLoadError(
            f"{config.model!r} has no multimodal processor (tokenizer plus image "
            "or video processor): it is not a video-language model"
        )
    placement: Any = config.device_map or ({"": backend.device} if backend.name != "cpu" else None)
    try:
        model = AutoModelForImageTextToText.from_pretrained(
            config.model, dtype=getattr(torch, dtype), device_map=placement, **common
        )
    except Exception as exc:
        raise ModelLoadError(explain(config.model, exc)) from None
    model.eval()
    processor.tokenizer.padding_side = "left"
    return processor, model
