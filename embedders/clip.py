"""The built-in `clip` embedder: frames and texts as vectors of one space, with a CLIP or SigLIP
checkpoint from transformers (a hub id or a folder made with `save_pretrained`).

The default is openai/clip-vit-base-patch32 (151M parameters, 512-dimensional vectors). Any
checkpoint whose model has `get_image_features` and `get_text_features` works: CLIP, SigLIP,
SigLIP 2. Frames go through the checkpoint's own image processor; texts are padded as the
family was trained (SigLIP: to its maximum length). Vectors are L2-normalised. The model is
loaded once per (model, revision, device, dtype) and shared by every caller.
"""

from __future__ import annotations

import threading
from typing import Any

from pydantic import Field

from vidtt.plugin_api import (
    BackendUnavailableError,
    Embedder,
    EmbedderOptions,
    ModelLoadError,
    hookimpl,
    hub_options,
)

DEFAULT_MODEL = "openai/clip-vit-base-patch32"
_loaded: dict[tuple[str, str | None, str, str], Any] = {}
_lock = threading.Lock()


class ClipOptions(EmbedderOptions):
    model: str = Field(DEFAULT_MODEL, min_length=1, description="a CLIP or SigLIP hub id or folder")
    revision: str | None = Field(None, description="the hub revision of `model`")


class ClipEmbedder(Embedder):
    name = "clip"
    description = "CLIP or SigLIP (transformers): frames and texts in one vector space"
    options_model = ClipOptions

    def signature(self, options: EmbedderOptions) -> str:
        chosen = _options(options)
        return f"clip:{chosen.model}@{chosen.revision or 'main'}"

    def dimension(self, options: EmbedderOptions) -> int:
        return int(self.embed_texts(["a"], options).shape[1])

    def embed_frames(self, frames: Any, options: EmbedderOptions) -> Any:
        model, processor = _model(_options(options))
        images = list(frames)
        return _batched(images, options.batch_size, lambda part: _images(model, processor, part))

    def embed_texts(self, texts: list[str], options: EmbedderOptions) -> Any:
        model, processor = _model(_options(options))
        return _batched(list(texts), options.batch_size, lambda p: _texts(model, processor, p))


def _options(options: EmbedderOptions) -> ClipOptions:
    return options if isinstance(options, ClipOptions) else ClipOptions(**options.model_dump())


def _batched(items: list[Any], size: int, embed: Any) -> Any:
    import numpy as np

    parts = [embed(items[i : i + size]) for i in range(0, len(items), size)]
    if not parts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(parts).astype(np.float32)


def _normalised(features: Any) -> Any:
    """The features of a transformers output (a tensor, or the pooled output), unit rows."""
    import torch

    tensor = features if isinstance(features, torch.Tensor) else features.pooler_output
    tensor = tensor.float()
    return (tensor / tensor.norm(dim=-1, keepdim=True).clamp_min(1e-12)).cpu().numpy()


def _images(model: Any, processor: Any, images: list[Any]) -> Any:
    import torch

    inputs = processor(images=images, return_tensors="pt")
    pixels = inputs["pixel_values"].to(model.device, model.dtype)
    with torch.inference_mode():
        return _normalised(model.get_image_features(pixel_values=pixels))


def _texts(model: Any, processor: Any, texts: list[str]) -> Any:
    import torch

    siglip = "siglip" in str(getattr(model.config, "model_type", ""))
    inputs = processor(
        text=texts,
        padding="max_length" if siglip else True,  # SigLIP was trained on full-length texts
        truncation=True,
        max_length=_text_length(model, processor),
        return_tensors="pt",
    )
    inputs = {k: v.to(model.device) for k, v in inputs.items() if k != "pixel_values"}
    with torch.inference_mode():
        return _normalised(model.get_text_features(**inputs))


def _text_length(model: Any, processor: Any) -> int | None:
    """The longest text the model takes: its text positions, or the tokenizer's own limit."""
    positions = getattr(getattr(model.config, "text_config", None), "max_position_embeddings", 0)
    own = getattr(getattr(processor, "tokenizer", None), "model_max_length", None)
    limits = [n for n in (positions, own) if isinstance(n, int) and 0 < n < 1_000_000]
    return min(limits) if limits else None


def _model(options: ClipOptions) -> tuple[Any, Any]:
    """The checkpoint's model and processor, loaded once per model, device and dtype."""
    key = (options.model, options.revision, options.device, options.dtype)
    with _lock:
        if key not in _loaded:
            _loaded[key] = _load(options)
        return _loaded[key]  # type: ignore[no-any-return]


def _load(options: ClipOptions) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModel, AutoProcessor

    _check_device(options.device)  # before any weight is read
    what = f"cannot load embedder model {options.model!r}"
    todo = "pass a CLIP or SigLIP checkpoint (a hub id, or a folder made with save_pretrained)"
    try:
        hub = hub_options(options.model, options.revision, False)
        processor = AutoProcessor.from_pretrained(options.model, **hub)
        model = AutoModel.from_pretrained(options.model, dtype=getattr(torch, options.dtype), **hub)
    except ModelLoadError as exc:
        raise ModelLoadError(f"clip embedder: {exc}") from None
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"{what}: {first}; {todo}") from None
    if not (hasattr(model, "get_image_features") and hasattr(model, "get_text_features")):
        kind = getattr(model.config, "model_type", "?")
        raise ModelLoadError(f"{what}: a {kind!r} model embeds no images and texts; {todo}")
    return model.to(options.device).eval(), processor


def _check_device(name: str) -> None:
    """`BackendUnavailableError` in one line when torch cannot run on the device `name`."""
    import torch

    todo = "give -E device=cpu, or a device `vidtt backends` lists as available"
    try:
        kind = torch.device(name).type
    except (RuntimeError, ValueError):
        raise BackendUnavailableError(f"clip embedder: {name!r} is not a device: {todo}") from None
    module = getattr(torch, kind, None)
    is_available = getattr(module, "is_available", None)
    if kind != "cpu" and not (callable(is_available) and is_available()):
        raise BackendUnavailableError(
            f"clip embedder: device {name!r} is not available here: {todo}"
        )


@hookimpl
def register_embedders(register) -> None:  # type: ignore[no-untyped-def]
    register(ClipEmbedder())
