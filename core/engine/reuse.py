"""Prompts continued from kept model state instead of prefilled whole.

Each prompt is cut into blocks of `BLOCK` tokens, and each block keyed by a digest chained
from the block before it: the model (name, dtype, device), the block's token ids and, from
the first visual token on, a digest of every visual input (pixels, grids, sizes). So two
prompts share a block key exactly when everything before the block's end is the same.

`continue_from` gives each prompt of a batch its longest kept start. A start must hold every
visual token (the pixels go in with them); where the kept blocks stop short of that, the
start up to the last visual token is computed with one forward pass, once for the batch. The
batch is then laid out for `model.generate`: each row's start, masked padding to the longest
start, then the row's own tokens left-padded. Positions come from the attention mask, so each
row sees the positions of its unpadded prompt. After generation `keep` stores the blocks of
every prompt and its answer, so that a follow-up (the prompt, the answer, a new question)
finds nearly all of itself kept. `blocker` says which models cannot continue this way.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from vidtt.engine.inputs import forward_names, generate_inputs
from vidtt.engine.prefix import BLOCK, Block, Prefix, PrefixCache

# Inputs as long as the prompt (laid out like its token ids); every other tensor a processor
# gives (pixels, grids, sizes) goes in with the visual tokens, in a row's start.
ALIGNED = ("attention_mask", "token_type_ids", "mm_token_type_ids", "moe_mm_token_type_ids")

# Families whose answers were not equal to a full prefill in the model matrix.
NOT_EXACT: dict[str, str] = {}


def blocker(model: Any) -> str | None:
    """Why `model` cannot continue a prompt from kept state (None when it can)."""
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
    return "cache" if "cache" in forward_names(model.__class__) else "past_key_values"


@dataclass
class Row:
    """One prompt of a batch (processor outputs, a batch of one), keyed for reuse."""

    inputs: Any
    length: int  # prompt tokens
    visual_end: int  # tokens up to its last visual token (0: none), which a start must hold
    media: str  # digest of its visual inputs ('' for none)
    identity: str  # the model, dtype and device
    first_visual: int  # where the media joins the block keys
    blocks: list[str] = field(default_factory=list)  # the key of each whole block
    start_key: str = ""  # the key of its start up to `visual_end` (`key_of_start`)
    start: int = 0  # tokens of the state it continues from (set at generation)
    reused: int = 0  # of those, tokens found kept
    fresh: bool = False  # alone in its batch and nothing kept: generate computes all of it

    def tokens(self) -> list[Any]:
        """The prompt's token ids, each with its token types where the processor gives them."""
        ids = self.inputs["input_ids"][0].tolist()
        types = [self.inputs[k][0].tolist() for k in ALIGNED[1:] if k in self.inputs]
        return list(zip(ids, *types)) if types else ids

    def keys(self, tokens: list[Any]) -> list[str]:
        """The chained key of each whole block of `tokens` (this prompt's, and what follows)."""
        keys, last = [], self.identity
        for end in range(BLOCK, len(tokens) + 1, BLOCK):
            block = hashlib.blake2b(last.encode(), digest_size=20)
            block.update(repr(tokens[end - BLOCK : end]).encode())
            if end > self.first_visual:
                block.update(self.media.encode())
            last = block.hexdigest()
            keys.append(last)
        return keys

    def key_of_start(self) -> str:
        """A key of the prompt up to `visual_end`: its last whole block's key (the model
        without one), the media, and the tokens after that block."""
        whole = self.visual_end // BLOCK
        before = self.blocks[whole - 1] if whole else self.identity
        return "|".join([before, self.media, repr(self.tokens()[BLOCK * whole : self.visual_end])])


def split(inputs: Any, visual_ids: set[int], identity: str, media: str | None = None) -> Row:
    """`inputs` (one prompt's processor outputs, before they move to the device) keyed for
    reuse by `identity` (model, dtype, device), its tokens and a digest of its visual inputs:
    all of them, or, given `media` (a digest of the frames and images they were made from),
    that and the ones not made of pixels or samples (grids, sizes, masks). Its start must
    reach its last visual token, or all but its last token when visual inputs come without
    tokens the processor names."""
    import torch

    ids = inputs["input_ids"][0]
    length = int(ids.shape[0])
    found = torch.isin(ids, torch.tensor(sorted(visual_ids), dtype=ids.dtype)).nonzero()
    rest = {k: v for k, v in inputs.items() if k != "input_ids" and k not in ALIGNED}
    # given `media`, floating point inputs are the processed frames, images or audio
    made = [
        k
        for k, v in rest.items()
        if media is not None and torch.is_tensor(v) and v.is_floating_point()
    ]
    key = (f"{media}|{made}|" if made else "") + digest(
        {k: v for k, v in rest.items() if k not in made}
    )
    end = length - 1 if rest else 0
    if len(found):
        end = min(int(found[-1]) + 1, length - 1)
    row = Row(
        inputs=inputs,
        length=length,
        visual_end=end,
        media=key,
        identity=identity,
        first_visual=int(found[0]) if len(found) else (0 if rest else length),
    )
    row.blocks = row.keys(row.tokens())
    row.start_key = row.key_of_start()
    return row


def digest(inputs: dict[str, Any]) -> str:
    """A digest of every value of `inputs` ('' for none)."""
    import torch

    if not inputs:
        return ""
    hashed = hashlib.sha256()
    for name in sorted(inputs):
        value = inputs[name]
        if isinstance(value, torch.Tensor):
            data = value.detach().cpu().contiguous()
            hashed.update(f"|{name}|{data.dtype}|{tuple(data.shape)}|".encode())
            hashed.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
        else:
            hashed.update(f"|{name}|{value!r}|".encode())
    return hashed.hexdigest()


def prefill(model: Any, row: Row, keyword: str, kept: Prefix | None = None) -> Prefix:
    """The state of `row` up to its last visual token: one forward pass over those tokens
    (after the `kept` state of its first ones, when given) and every visual input."""
    from transformers import DynamicCache

    begin, end = (kept.length if kept is not None else 0), row.visual_end
    inputs = {
        k: (v[..., begin:end] if k == "input_ids" or k in ALIGNED[1:] else v)
        for k, v in row.inputs.items()
    }
    if "attention_mask" in inputs:  # the kept tokens' too
        inputs["attention_mask"] = inputs["attention_mask"][..., :end]
    kwargs = generate_inputs(model, inputs)
    if "logits_to_keep" in forward_names(model.__class__):
        kwargs["logits_to_keep"] = 1  # the start's logits are never read
    cache = DynamicCache(config=model.config)
    for n, (keys, values) in enumerate(kept.layers if kept is not None else []):
        cache.update(keys, values, n)
    model(**kwargs, **{keyword: cache}, use_cache=True)
    layers: list[Any] = cache.layers  # plain DynamicLayers (see `blocker`)
    return Prefix(layers=[(layer.keys, layer.values) for layer in layers], length=end)


def spans(blocks: list[Block]) -> list[Block]:
    """`blocks` with each stretch of consecutive ones of one run joined into one."""
    out: list[Block] = []
    for block in blocks:
        if out and block.follows(out[-1]):
            out[-1] = Block(out[-1].run, out[-1].start, out[-1].length + block.length)
        else:
            out.append(block)
    return out


def joined(blocks: list[Block]) -> Prefix:
    """One state of consecutive blocks."""
    import torch

    parts = spans(blocks)
    layers = [
        tuple(
            torch.cat([p.run.layers[n][kv][:, :, p.start : p.start + p.length] for p in parts], 2)
            for kv in (0, 1)
        )
        for n in range(len(blocks[0].run.layers))
    ]
    return Prefix(layers=layers, length=sum(b.length for b in blocks))  # type: ignore[arg-type]


def starts(model: Any, store: PrefixCache, rows: list[Row]) -> list[list[Block]]:
    """Each row's start state, in consecutive pieces (none: it starts from nothing), setting
    its `start` and `reused`; counts hits (rows that reused kept tokens) and misses."""
    keyword = cache_keyword(model)
    made: dict[str, Prefix] = {}
    out = [start_of(model, store, row, made, keyword, len(rows) == 1) for row in rows]
    store.count(hits=sum(1 for r in rows if r.reused), misses=sum(1 for r in rows if not r.reused))
    return out


def kept_start(store: PrefixCache, row: Row) -> list[Block]:
    """The longest kept start of `row`: whole blocks (of all but its last token), and where
    they stop inside the block of its last visual token, its start's shorter last block."""
    found = store.chain(row.blocks[: (row.length - 1) // BLOCK])
    if row.visual_end % BLOCK and len(found) >= row.visual_end // BLOCK:
        # the shorter last block: needed here, or kept fresh for the video's other questions
        with_tail = store.chain(row.blocks[: row.visual_end // BLOCK], row.start_key)
        if BLOCK * len(found) < row.visual_end:
            found = with_tail
    return found


def start_of(
    model: Any, store: PrefixCache, row: Row, made: dict[str, Prefix], keyword: str, alone: bool
) -> list[Block]:
    """`row`'s kept start when it holds the visual tokens; else its start up to them, made
    once a batch (`made`) after any kept text before the media, and kept. A row `alone` in
    its batch with nothing kept is `fresh`: generate computes it whole, as without a cache,
    and `keep` keeps its start afterwards."""
    pieces = kept_start(store, row)
    row.start = row.reused = sum(p.length for p in pieces)
    if row.start >= row.visual_end:
        return pieces
    key = row.start_key
    if key in made:
        row.start = row.reused = row.visual_end
        return [Block(made[key], 0, row.visual_end)]
    typed = any(k in row.inputs for k in ALIGNED[1:])  # token types: computed from the start
    serves = pieces and row.start <= row.first_visual and not typed
    kept = joined(pieces) if serves else None
    if alone and kept is None:
        row.start = row.reused = 0
        row.fresh = True
        return []
    made[key] = prefill(model, row, keyword, kept)
    row.start, row.reused = row.visual_end, kept.length if kept is not None else 0
    whole = row.blocks[: row.visual_end // BLOCK]
    keep_blocks(store, [*whole, key], made[key], row.visual_end, row.reused)
    return [Block(made[key], 0, row.visual_end)]


def continue_from(
    model: Any, store: PrefixCache, rows: list[Row], pad: int | None
) -> tuple[dict[str, Any], Any]:
    """The batch's `generate` inputs (whole prompts laid out as the module says, no visual
    inputs, the cache under its keyword) and the cache, which `keep` reads afterwards."""
    states = starts(model, store, rows)
    inputs = lay_out(rows, pad)
    if rows[0].fresh:  # alone: its visual inputs go to generate
        inputs.update({k: v for k, v in rows[0].inputs.items() if k not in inputs})
    cache = stacked(model, states, max(r.start for r in rows), len(rows))
    return {**inputs, cache_keyword(model): cache}, cache


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


def stacked(model: Any, states: list[list[Block]], start: int, rows: int) -> Any:
    """A cache holding each row's start state (its blocks one after another, a copy for each
    stretch of one run), zeros (masked out) up to `start` tokens."""
    import torch
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    known = next((blocks[0].run for blocks in states if blocks), None)
    if known is None or start == 0:
        return cache
    laid = [spans(blocks) for blocks in states]
    for layer, (keys, _) in enumerate(known.layers):
        shape = (rows, keys.shape[1], start, keys.shape[3])
        both = [torch.zeros(shape, dtype=keys.dtype, device=keys.device) for _ in range(2)]
        for b, parts in enumerate(laid):
            at = 0
            for p in parts:
                for kv in (0, 1):
                    got = p.run.layers[layer][kv][0, :, p.start : p.start + p.length]
                    both[kv][b, :, at : at + p.length] = got
                at += p.length
        cache.update(both[0], both[1], layer)
    return cache


def keep(store: PrefixCache, rows: list[Row], cache: Any, answers: list[list[int]]) -> None:
    """Keep the blocks of each prompt and of its answer (the tokens fed back: all but the
    last) from the batch's cache after generation."""
    import torch

    layers: list[Any] = cache.layers
    start = max(r.start for r in rows)
    width = start + max(r.length - r.start for r in rows)
    for b, (row, answer) in enumerate(zip(rows, answers)):
        typed = any(k in row.inputs for k in ALIGNED[1:])  # answers' types are generate's
        tokens = row.tokens() + ([] if typed else answer[:-1])
        fed = len(tokens) - row.length
        own = row.length - row.start
        where = [*range(row.start), *range(width - own, width + fed)]
        keys = row.keys(tokens)
        first = BLOCK * (row.start // BLOCK)  # the blocks before were kept already
        if first >= len(where):
            continue
        index = torch.tensor(where[first:], device=layers[0].keys.device)
        run = Prefix(
            layers=[
                (lay.keys[b : b + 1, :, index], lay.values[b : b + 1, :, index]) for lay in layers
            ],
            length=len(index),
        )  # one copy of the new tokens' state: their blocks share it
        keep_blocks(store, keys, run, BLOCK * len(keys), row.start, first)
        end = row.visual_end
        if row.fresh and end % BLOCK:  # its start's shorter last block, for other questions
            whole = row.blocks[: end // BLOCK]
            keep_blocks(store, [*whole, row.start_key], run, end, BLOCK * len(whole), first)


def keep_blocks(
    store: PrefixCache, keys: list[str], state: Prefix, end: int, start: int = 0, offset: int = 0
) -> None:
    """Keep the blocks from token `start` to `end` under their `keys` (a shorter last block
    under the key after the whole ones), as parts of `state`, whose first token is the
    prompt's token `offset`; the last first, so that a start's end is dropped before its
    beginning."""
    for n in reversed(range(start // BLOCK, -(-end // BLOCK))):
        begin = n * BLOCK
        store.put(keys[n], Block(state, begin - offset, min(end, begin + BLOCK) - begin))
