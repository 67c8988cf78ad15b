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
