"""The prefix cache: the model state (keys and values of every layer) of prompts, kept in
blocks of `BLOCK` tokens so that every later prompt starting with the same tokens and the
same visual inputs continues from it instead of prefilling it again.

A block's key chains the keys of the blocks before it (see `vidtt.engine.reuse`), so a prompt
finds its longest kept start block by block. The blocks one pass computed share one run of
memory, so a start is laid out in a few copies, not one a block. A store belongs to one engine
(one model, dtype and device), is bounded in bytes (the runs its blocks are in) and drops the
least recently used blocks first (the end of a start before its beginning); a run's memory
goes with its last block.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

BLOCK = 16  # tokens a block holds
MIB = 1024 * 1024
MOST = 4096 * MIB  # the default bound never goes over this
SHARE = 16  # by default a store may hold this fraction of the device's memory


@dataclass(frozen=True)
class PrefixStats:
    """What a prefix cache did so far: prompts that reused a kept start (hits) or had none
    (misses), blocks dropped for room (evictions), and what it holds now (blocks, bytes)."""

    hits: int = 0
    misses: int = 0
    evictions: int = 0
    blocks: int = 0
    bytes: int = 0
    limit: int = 0

    def describe(self) -> str:
        """One line for a summary: `prefix cache: 40 hits, 8 misses, 12.3 MB held ...`."""
        return (
            f"prefix cache: {self.hits} hits, {self.misses} misses, "
            f"{self.bytes / MIB:.1f} MiB held in {self.blocks} blocks "
            f"(limit {self.limit / MIB:.0f} MiB), {self.evictions} evicted"
        )


@dataclass
class Prefix:
    """The state of a run of tokens (a prompt's start, the tokens one generation computed):
    keys and values per layer, a batch of one."""

    layers: list[tuple[Any, Any]]
    length: int  # tokens

    @property
    def size(self) -> int:
        return sum(t.numel() * t.element_size() for pair in self.layers for t in pair)


@dataclass(frozen=True, eq=False)
class Block:
    """Tokens `start` to `start + length` of a kept run's state (a block of `BLOCK` tokens,
    or a start's shorter last one). Blocks of one run share its memory."""

    run: Prefix
    start: int
    length: int

    def follows(self, other: Block) -> bool:
        """Whether this block comes right after `other` in the same run."""
        return self.run is other.run and self.start == other.start + other.length


class PrefixCache:
    """Blocks by key, at most `limit` bytes (the runs they are in), least recently used
    dropped first. Safe to read from several threads."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a prefix cache needs a limit of at least one byte")
        self.limit = limit
        self._blocks: OrderedDict[str, Block] = OrderedDict()
        self._runs: dict[int, int] = {}  # id of a run -> its blocks kept
        self._lock = threading.Lock()
        self._held = self._hits = self._misses = self._evictions = 0

    def chain(self, keys: list[str], tail: str = "") -> list[Block]:
        """The kept blocks of `keys` from the first up to the first one missing, and when all
        are kept the one under `tail` (a start's last, shorter block) if it is: now the most
        recently used, the first most of all."""
        with self._lock:
            found = []
            for key in [*keys, tail] if tail else keys:
                block = self._blocks.get(key)
                if block is None:
                    break
                found.append(block)
            for key in reversed([*keys, tail][: len(found)]):
                self._blocks.move_to_end(key)
            return found

    def put(self, key: str, block: Block) -> None:
        """Keep `block` (or, kept already, mark it used), dropping the least recently used
        until its run fits (a run larger than the whole limit is not kept)."""
        run = block.run
        with self._lock:
            if key in self._blocks:
                self._blocks.move_to_end(key)
                return
            if id(run) not in self._runs:
                if run.size > self.limit:
                    return
                while self._held + run.size > self.limit:
                    self._drop()
                self._held += run.size
            self._runs[id(run)] = self._runs.get(id(run), 0) + 1
            self._blocks[key] = block

    def _drop(self) -> None:
        """Drop the least recently used block (and its run's memory with its last block)."""
        _, block = self._blocks.popitem(last=False)
        self._evictions += 1
        left = self._runs[id(block.run)] - 1
        if left:
            self._runs[id(block.run)] = left
        else:
            del self._runs[id(block.run)]
            self._held -= block.run.size

    def count(self, hits: int = 0, misses: int = 0) -> None:
        """Note prompts that reused a kept start (hits) or had to compute theirs (misses)."""
        with self._lock:
            self._hits += hits
            self._misses += misses

    def clear(self) -> None:
        with self._lock:
            self._blocks.clear()
            self._runs.clear()
            self._held = 0

    def stats(self) -> PrefixStats:
        with self._lock:
            return PrefixStats(
                hits=self._hits,
                misses=self._misses,
                evictions=self._evictions,
                blocks=len(self._blocks),
                bytes=self._held,
                limit=self.limit,
            )


def default_limit(device: Any) -> int:
    """The default bound for a store on `device`: a sixteenth of its memory (the machine's
    for a CPU, or when the device does not say), at most 4 GiB."""
    return min(MOST, device_memory(device) // SHARE)


def device_memory(device: Any) -> int:
    """Bytes of memory `device` has (the machine's RAM for a CPU or an MPS device)."""
    import os

    import torch

    kind = getattr(device, "type", str(device).split(":")[0])
    module = getattr(torch, kind, None) if kind not in ("cpu", "mps") else None
    try:
        if module is not None and hasattr(module, "get_device_properties"):
            return int(module.get_device_properties(device).total_memory)
    except (RuntimeError, AssertionError, AttributeError, TypeError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * 1024 * MIB
