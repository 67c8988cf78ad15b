"""Prompts continued from a kept prefix state instead of prefilled whole.

A prompt's reusable start runs up to its last visual token (the system text, the frames and
their visual tokens, a transcript beside them); what follows (the question, earlier answers)
is its own. `split` keys each start by a digest of what makes its state (token ids and the
visual inputs); `continue_from` finds each state in the engine's `PrefixCache` or computes
it once per batch with one forward pass, then lays the batch out for `model.generate`: each
row's start, masked padding up to the longest start, then left-padded own tokens. Positions
come from the attention mask, so every row sees the positions of its unpadded prompt and
greedy answers equal those of a full prefill. `blocker` says which models cannot continue
this way (they are prefilled whole).
"""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass
from typing import Any

from vidtt.engine.inputs import generate_inputs
from vidtt.engine.prefix import Prefix, PrefixCache

# Inputs as long as the prompt (laid out like its token ids); every other tensor a processor
# gives (pixels, grids, sizes) belongs to the start, whose visual tokens it fills.
ALIGNED = ("attention_mask", "token_type_ids", "mm_token_type_ids", "moe_mm_token_type_ids")

# Families whose answers were not equal to a full prefill in the model matrix (none so far).
NOT_EXACT: dict[str, str] = {}


def blocker(model: Any) -> str | None:
    """Why `model` cannot continue a prompt from a kept prefix state (None when it can)."""
    config = model.config
    if getattr(config, "is_encoder_decoder", False):
        return "an encoder-decoder model"
    if config.model_type in NOT_EXACT:
        return NOT_EXACT[config.model_type]
    if any(hasattr(m, "get_rope_index") for m in (model, getattr(model, "model", None))):
        return "its positions (multimodal RoPE) are computed from the whole prompt"
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    if any(type(layer) is not DynamicLayer for layer in DynamicCache(config=config).layers):
        return "its cache has sliding-window or linear-attention layers"
    return None


def cache_keyword(model: Any) -> str:
    """The name `model.forward` takes its cache by (`cache`; `past_key_values` before 5.25)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


@dataclass
class Row:
    """One prompt of a batch (processor outputs, a batch of one), split for reuse."""

    inputs: dict[str, Any]
    length: int  # prompt tokens
    start: int  # tokens of its reusable start (0: none)
    key: str  # what makes that start's state ('' when there is none)


def split(inputs: Any, visual_ids: set[int], identity: str) -> Row:
    """`inputs` (one prompt's processor outputs, before they move to the device) with its
    start: up to the last visual token, or all but the last token when visual inputs come
    without tokens the processor names; keyed by `identity` (model, revision, dtype, device),
    the start's token ids and aligned inputs, and every visual input."""
    import torch

    ids = inputs["input_ids"][0]
    length = int(ids.shape[0])
    visual = torch.isin(ids, torch.tensor(sorted(visual_ids), dtype=ids.dtype))
    found = visual.nonzero()
    media = any(
        isinstance(v, torch.Tensor) and k not in (*ALIGNED, "input_ids") for k, v in inputs.items()
    )
    start = length - 1 if media else 0
    if len(found):
        start = min(int(found[-1]) + 1, length - 1)
    return Row(inputs=inputs, length=length, start=start, key=digest(inputs, start, identity))


def digest(inputs: dict[str, Any], start: int, identity: str) -> str:
    """A digest of what makes the state of `inputs`' first `start` tokens ('' for none)."""
    import torch

    if start <= 0:
        return ""
    hashed = hashlib.blake2b(identity.encode(), digest_size=20)
    for name in sorted(inputs):
        value = inputs[name]
        if isinstance(value, torch.Tensor):
            if name == "input_ids" or name in ALIGNED:
                value = value[..., :start]
            data = value.detach().cpu().contiguous()
            hashed.update(f"|{name}|{data.dtype}|{tuple(data.shape)}|".encode())
            hashed.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
        else:
            hashed.update(f"|{name}|{value!r}|".encode())
    return hashed.hexdigest()


def prefill(model: Any, row: Row, keyword: str) -> Prefix:
    """The state of `row`'s start: one forward pass over its tokens and visual inputs."""
    from transformers import DynamicCache

    start = row.start
    inputs = {
        k: (v[..., :start] if k == "input_ids" or k in ALIGNED else v)
        for k, v in row.inputs.items()
    }
    kwargs = generate_inputs(model, inputs)
    if "logits_to_keep" in inspect.signature(model.forward).parameters:
        kwargs["logits_to_keep"] = 1  # the start's logits are never read
    cache = DynamicCache(config=model.config)
    model(**kwargs, **{keyword: cache}, use_cache=True)
    layers: list[Any] = cache.layers  # plain DynamicLayers (see `blocker`)
    return Prefix(layers=[(layer.keys, layer.values) for layer in layers], length=start)


def states(
    model: Any, store: PrefixCache, rows: list[Row]
) -> tuple[list[Prefix | None], list[int]]:
    """Each row's start state (None for a row without one), from `store` or computed once per
    key (and kept there), and the tokens each row reused (0 for the row that computed it)."""
    keyword = cache_keyword(model)
    found: dict[str, Prefix] = {}
    out: list[Prefix | None] = []
    reused: list[int] = []
    for row in rows:
        state = (found.get(row.key) or store.get(row.key)) if row.key else None
        if row.key and state is None:
            state = found[row.key] = prefill(model, row, keyword)
            store.put(row.key, state)
            reused.append(0)
        else:
            reused.append(row.start if state is not None else 0)
        if state is not None:
            found[row.key] = state
        out.append(state)
    computed = sum(1 for row, n in zip(rows, reused) if row.key and n == 0)
    store.count(hits=sum(1 for n in reused if n), misses=computed)
    return out, reused


def continue_from(
    model: Any, store: PrefixCache, rows: list[Row], pad: int | None
) -> tuple[dict[str, Any], dict[str, Any], list[int]]:
    """The batch's `generate` inputs (whole prompts laid out as the module says, no visual
    inputs), the cache keyword holding their starts' states, and the tokens each row reused."""
    found, reused = states(model, store, rows)
    inputs = lay_out(rows, pad)
    cache = stacked(model, found, max(r.start for r in rows), len(rows))
    return inputs, {cache_keyword(model): cache}, reused


def lay_out(rows: list[Row], pad: int | None) -> dict[str, Any]:
    """Token ids and aligned inputs of `rows`: each start, padding to the longest start,
    padding, then each row's own tokens (padding masked out)."""
    import torch

    start = max(r.start for r in rows)
    rest = max(r.length - r.start for r in rows)
    ids = rows[0].inputs["input_ids"]
    out: dict[str, Any] = {
        "input_ids": torch.full((len(rows), start + rest), pad or 0, dtype=ids.dtype),
        "attention_mask": torch.zeros((len(rows), start + rest), dtype=torch.long),
    }
    for name in ALIGNED[1:]:
        if name in rows[0].inputs:
            out[name] = torch.zeros((len(rows), start + rest), dtype=rows[0].inputs[name].dtype)
    for b, row in enumerate(rows):
        own = row.length - row.start
        mask = row.inputs.get("attention_mask")
        for name, target in out.items():
            value = row.inputs.get(name)
            if value is None:  # a prompt without a mask: all of it is seen
                value = torch.ones_like(row.inputs["input_ids"]) if mask is None else mask
            target[b, : row.start] = value[0, : row.start]
            target[b, start + rest - own :] = value[0, row.start :]
    return {name: value.to(ids.device) for name, value in out.items()}


def stacked(model: Any, found: list[Prefix | None], start: int, rows: int) -> Any:
    """A cache holding each row's start state, zeros (masked out) up to `start` tokens."""
    import torch
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    known = next((s for s in found if s is not None and s.length), None)
    if known is None or start == 0:
        return cache
    for layer, (keys, _) in enumerate(known.layers):
        shape = (rows, keys.shape[1], start, keys.shape[3])
        both = [torch.zeros(shape, dtype=keys.dtype, device=keys.device) for _ in range(2)]
        for b, state in enumerate(found):
            if state is not None and state.length:
                both[0][b, :, : state.length] = state.layers[layer][0][0]
                both[1][b, :, : state.length] = state.layers[layer][1][0]
        cache.update(both[0], both[1], layer)
    return cache
