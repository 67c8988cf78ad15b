"""Load a processor and model with transformers' Auto classes; errors say what to do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vidtt.config import PipelineConfig
from vidtt.errors import ModelLoadError
from vidtt.interfaces import Backend
from vidtt.settings.hub import UNREACHABLE, check_hub, hub_keywords, looks_local, reachable
from vidtt.settings.packages import check_torchvision
from vidtt.settings.resolve import Settings

__all__ = [
    "UNREACHABLE",
    "auto_config",
    "check_hub",
    "check_local_model",
    "explain",
    "hub_options",
    "load",
    "load_processor",
    "looks_local",
    "reachable",
    "resolve_model_class",
    "with_frame_rule",
]


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
    """One line for a failed `from_pretrained` (a vidtt error's own line as it is)."""
    if isinstance(exc, ModelLoadError):
        return str(exc)
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


def load_processor(config: PipelineConfig) -> Any:
    """The model's processor (no weights are read); errors say what to do."""
    options = hub_options(config)  # the hub check first: offline, one line at once
    check_torchvision()  # transformers' processors import it: a mismatch is one line
    from transformers import AutoProcessor

    try:
        processor = AutoProcessor.from_pretrained(config.model, **options)
    except Exception as exc:
        raise ModelLoadError(explain(config.model, exc)) from None
    if not hasattr(processor, "tokenizer"):
        raise ModelLoadError(
            f"{config.model!r} has no multimodal processor (tokenizer plus image "
            "or video processor): it is not a video-language model"
        )
    return processor


def with_frame_rule(settings: Settings) -> tuple[Settings, Any]:
    """The settings with the model's frame rule chosen, and the processor read for it (to be
    handed to the model's load rather than read again; None when the user's own frame options
    decide the rule, and nothing is read)."""
    if not settings.needs_video_processor:
        return settings, None
    processor = load_processor(settings.config)
    return settings.with_video_processor(getattr(processor, "video_processor", None)), processor


def hub_options(config: PipelineConfig) -> dict[str, Any]:
    """What every `from_pretrained` of the model takes: its revision, its remote-code choice
    and, offline with the model cached, `local_files_only`. A local folder is checked, and a
    hub id goes through the quick hub check first (once), so every read of the model fails
    in one line at once when it cannot succeed."""
    check_local_model(config.model)
    return hub_keywords(config.model, config.revision, config.trust_remote_code)


def load(
    config: PipelineConfig, backend: Backend, dtype: str, processor: Any = None
) -> tuple[Any, Any]:
    """The processor (unless given, loaded once already) and the model for `config`, placed
    on `backend` in `dtype`."""
    if processor is None:
        processor = load_processor(config)
    import torch

    common = hub_options(config)  # before the try: its error is already one line
    check_torchvision()
    placement: Any = config.device_map or ({"": backend.device} if backend.name != "cpu" else None)
    try:
        model_class, extra = resolve_model_class(auto_config(config.model, common), config.model)
        model = model_class.from_pretrained(
            config.model, dtype=getattr(torch, dtype), device_map=placement, **extra, **common
        )
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(explain(config.model, exc)) from None
    model.eval()
    processor.tokenizer.padding_side = "left"
    return processor, model


def auto_config(model: str, common: dict[str, Any]) -> Any:
    """The checkpoint's config (its model type and architectures)."""
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(model, **common)


def resolve_model_class(model_config: Any, model: str = "the model") -> tuple[Any, dict[str, Any]]:
    """The class that loads a video-to-text model from `model_config`, and the extra
    `from_pretrained` keywords it needs.

    The image-text-to-text auto class serves most families. Omni checkpoints (Qwen2.5-Omni,
    Qwen3-Omni) are published as the whole speech-and-text model; their text-output "thinker"
    is what answers about videos, so the thinker's class is loaded with the thinker's config
    and the weights stored under `thinker.` (the speech parts are not loaded). Otherwise the
    class named in the config's `architectures` is used.
    """
    import transformers
    from transformers import AutoModelForImageTextToText

    mapping = AutoModelForImageTextToText._model_mapping
    auto_map = getattr(model_config, "auto_map", None) or {}
    if type(model_config) in mapping or "AutoModelForImageTextToText" in auto_map:
        return AutoModelForImageTextToText, {"config": model_config}
    thinker = getattr(model_config, "thinker_config", None)
    if thinker is not None and type(thinker) in mapping:
        return mapping[type(thinker)], {"config": thinker, "key_mapping": {r"^thinker\.": ""}}
    named = _named_class(transformers, model_config)
    if named is not None and hasattr(named, "generate"):
        return named, {"config": model_config}
    raise ModelLoadError(
        f"cannot load {model!r}: transformers has no video-to-text class for model type "
        f"{getattr(model_config, 'model_type', '?')!r} (architectures: "
        f"{', '.join(getattr(model_config, 'architectures', None) or ['none'])}); it may need "
        "a newer transformers, or trust_remote_code: true for a model with its own code"
    )


def _named_class(transformers: Any, model_config: Any) -> Any:
    """The first class of the config's `architectures` that transformers has, if any."""
    for name in getattr(model_config, "architectures", None) or []:
        found = getattr(transformers, name, None)
        if found is not None:
            return found
    return None
