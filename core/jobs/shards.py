"""Output folders of shards (`vidtt run --ray --output DIR/`): the workers write JSONL shards
into the folder, a rerun reads every shard to resume, and compaction drops the records newer
ones replaced. Per id the same record is kept as for one output file (`jobs.records`)."""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidtt.errors import ConfigError
from vidtt.jobs.records import output_records, record_line, replaces, write_lines

SHARD_SUFFIX = ".jsonl"


def is_folder(output: str | Path) -> bool:
    """Whether `output` names a folder of shards: an existing folder, or a name ending in /."""
    text = str(output)
    return text.endswith(("/", os.sep)) or Path(text).is_dir()


def check_folder(output: str | Path) -> Path:
    """The folder of shards `output` names, made and checked writable."""
    folder = Path(output)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--output {output} is a file, not a folder of shards")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot write into {folder}: {exc.strerror or exc}") from None
    return folder


class ShardStamp:
    """The time stamp that starts the names of a run's shards."""

    @staticmethod
    def now() -> str:
        """A name prefix that sorts in time order: shards of later runs sort later."""
        return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{uuid.uuid4().hex[:6]}"


def shards(folder: Path) -> list[Path]:
    """The JSONL shards of a folder, oldest run first (hidden temporary files aside)."""
    return sorted(
        p for p in folder.glob(f"*{SHARD_SUFFIX}") if p.is_file() and not p.name.startswith(".")
    )


def write_shard(path: Path, records: list[dict[str, Any]]) -> None:
    """One shard of `records` (none when there are none), written atomically."""
    if records:
        write_lines(path, [record_line(r) for r in records])


def shard_sink(folder: str, stamp: str) -> Any:
    """A Ray Data sink whose write tasks each write their records as one shard of `folder`."""
    from ray.data import Datasink

    class JsonlShards(Datasink):  # type: ignore[misc]
        """Each write task writes one `STAMP-TASK-RANDOM.jsonl` (via a temporary file)."""

        def write(self, blocks: Any, ctx: Any) -> int:
            import pyarrow as pa

            lines: list[str] = []
            for block in blocks:
                table = block if isinstance(block, pa.Table) else pa.Table.from_pandas(block)
                lines += table.column("record").to_pylist()
            if lines:
                name = f"{stamp}-{getattr(ctx, 'task_idx', 0):05d}-{uuid.uuid4().hex[:8]}"
                write_lines(Path(folder) / f"{name}{SHARD_SUFFIX}", lines)
            return len(lines)

        def get_name(self) -> str:
            return "WriteJSONLShards"

    return JsonlShards()


@dataclass
class Kept:
    """The record kept for an id, and where it is: its shard and line (from 0)."""

    shard: Path
    line: int
    record: dict[str, Any]


def winners(folder: Path) -> dict[str, Kept]:
    """Per id, the record a reader keeps: the last answer, else the last error (as
    `jobs.read_output` decides for one file, over the shards in order)."""
    kept: dict[str, Kept] = {}
    for shard in shards(folder):
        with shard.open(encoding="utf-8", errors="replace") as lines:
            for number, record in output_records(lines):
                key = str(record["id"])
                before = kept.get(key)
                if replaces(record, before.record if before else None):
                    kept[key] = Kept(shard, number, record)
    return kept


def read_shards(folder: Path) -> dict[str, dict[str, Any]]:
    """`jobs.read_output` for a folder of shards."""
    return {key: kept.record for key, kept in winners(folder).items()}


def compact_folder(folder: Path) -> None:
    """Leave one record per id in the folder: shards holding records that newer ones replaced
    (or lines a crash cut short) are rewritten without them; emptied shards are removed."""
    keep: dict[Path, set[int]] = {}
    for kept in winners(folder).values():
        keep.setdefault(kept.shard, set()).add(kept.line)
    for shard in shards(folder):
        wanted = keep.get(shard, set())
        with shard.open(encoding="utf-8", errors="replace") as text:
            lines = [line.rstrip("\n") for line in text]  # as `winners` numbers them
        if len(wanted) == len(lines):
            continue
        if not wanted:
            shard.unlink()
        else:
            write_lines(shard, [line for n, line in enumerate(lines) if n in wanted])
