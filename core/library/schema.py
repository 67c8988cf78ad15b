"""The two Lance tables of a library and their Arrow schemas (pyarrow imported when asked).

`videos`: one row per video (its id, path, size, modification time, duration, when it was
added and last indexed, its status, the run id of its moments and the recipe that made them).
`moments`: one row per moment (its video, with that video's path, duration and modification
time copied so every search filter is pushed down to this one table; kind, start, end, text,
vector, thumbnail).
The embedder's name and the format are kept in the moments table's schema metadata; the
vector size is the vector column's own type.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from vidtt.errors import LibraryError
from vidtt.library.records import KINDS, Moment, Video

if TYPE_CHECKING:
    import pyarrow as pa

FORMAT = "1"  # bumped when a table's layout changes
VIDEOS, MOMENTS = "videos", "moments"
EMBEDDER_KEY, FORMAT_KEY = b"vidtt.embedder", b"vidtt.format"
INDEXING, DONE = "indexing", "done"
BATCH_ROWS = 1024  # moments per Arrow batch written: memory stays flat for any video
VIDEO_COLUMNS = ("video_id", "path", "size", "mtime_ns", "duration", "status", "run", "recipe")
HIT_COLUMNS = ("moment_id", "video_id", "run", "path", "kind", "start", "end", "text", "thumbnail")


def videos_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("video_id", pa.string(), nullable=False),
            pa.field("path", pa.string(), nullable=False),
            pa.field("size", pa.int64()),
            pa.field("mtime_ns", pa.int64()),
            pa.field("duration", pa.float64()),
            pa.field("added_at", pa.float64()),  # seconds since the epoch
            pa.field("indexed_at", pa.float64()),  # when its moments were last written
            pa.field("status", pa.string()),  # "indexing", then "done"
            pa.field("run", pa.string()),  # the run id its visible moments carry
            pa.field("moments", pa.int64()),
            recipe_field(),
        ]
    )


def recipe_field() -> pa.Field:
    """`recipe`: what indexing wrote the video's moments (`IndexWork.recipe`); a library made
    before it existed gains it, null, on the first write."""
    import pyarrow as pa

    return pa.field("recipe", pa.string())


def moments_schema(dim: int, embedder: str) -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("moment_id", pa.string(), nullable=False),  # "<run>.<n>"
            pa.field("video_id", pa.string(), nullable=False),
            pa.field("run", pa.string(), nullable=False),
            pa.field("path", pa.string()),
            pa.field("duration", pa.float64()),
            pa.field("mtime_ns", pa.int64()),
            pa.field("kind", pa.string()),
            pa.field("start", pa.float64()),
            pa.field("end", pa.float64()),
            pa.field("text", pa.string()),
            pa.field("vector", pa.list_(pa.float32(), dim)),
            pa.field("thumbnail", pa.string()),
        ],
        metadata={EMBEDDER_KEY: embedder.encode("utf-8"), FORMAT_KEY: FORMAT.encode()},
    )


def video_row(
    video: Video, *, status: str, run: str, now: float, moments: int = 0, recipe: str = ""
) -> dict[str, Any]:
    return {
        "video_id": video.video_id,
        "path": video.path,
        "size": int(video.size),
        "mtime_ns": int(video.mtime_ns),
        "duration": None if video.duration is None else float(video.duration),
        "added_at": now,
        "indexed_at": now,
        "status": status,
        "run": run,
        "moments": moments,
        "recipe": recipe,
    }


def moment_batches(
    video: Video, run: str, moments: Iterable[Moment], schema: pa.Schema
) -> Iterator[pa.RecordBatch]:
    """The moments as Arrow batches of `BATCH_ROWS`, each checked (kind, times, vector size)."""
    chunk: list[Moment] = []
    number = 0
    for moment in moments:
        chunk.append(moment)
        if len(chunk) == BATCH_ROWS:
            yield _batch(video, run, number, chunk, schema)
            number += len(chunk)
            chunk = []
    if chunk:
        yield _batch(video, run, number, chunk, schema)


def _batch(video: Video, run: str, first: int, chunk: list[Moment], schema: pa.Schema) -> Any:
    import numpy as np
    import pyarrow as pa

    dim = schema.field("vector").type.list_size
    vectors = np.zeros((len(chunk), dim), dtype=np.float32)
    present = np.zeros(len(chunk), dtype=bool)
    for row, moment in enumerate(chunk):
        _check(moment, video)
        if moment.vector is not None:
            vectors[row] = _vector(moment.vector, dim, moment)
            present[row] = True
    values = pa.array(vectors.reshape(-1))
    column = pa.FixedSizeListArray.from_arrays(values, dim, mask=pa.array(~present))
    n = len(chunk)
    return pa.RecordBatch.from_pydict(
        {
            "moment_id": [f"{run}.{first + i}" for i in range(n)],
            "video_id": [video.video_id] * n,
            "run": [run] * n,
            "path": [video.path] * n,
            "duration": [video.duration] * n,
            "mtime_ns": [int(video.mtime_ns)] * n,
            "kind": [m.kind for m in chunk],
            "start": [float(m.start) for m in chunk],
            "end": [float(m.end) for m in chunk],
            "text": [m.text or "" for m in chunk],
            "vector": column,
            "thumbnail": [m.thumbnail for m in chunk],
        },
        schema=schema,
    )


def _check(moment: Moment, video: Video) -> None:
    if moment.kind not in KINDS:
        raise LibraryError(
            f"a moment of {video.path} has kind {moment.kind!r}: use one of {', '.join(KINDS)}"
        )
    start, end = float(moment.start), float(moment.end)
    if not (math.isfinite(start) and math.isfinite(end) and 0 <= start <= end):
        raise LibraryError(
            f"a moment of {video.path} spans {moment.start!r} to {moment.end!r} s: "
            "start and end must be seconds with 0 <= start <= end"
        )


def _vector(vector: Any, dim: int, moment: Moment) -> Any:
    import numpy as np

    array = np.asarray(vector, dtype=np.float32).reshape(-1)
    if array.shape[0] != dim or not np.isfinite(array).all():
        raise LibraryError(
            f"a {moment.kind} moment at {moment.start} s has a vector of {array.shape[0]} "
            f"values (finite: {bool(np.isfinite(array).all())}); this library holds "
            f"vectors of {dim}: embed with the library's embedder"
        )
    return array
