"""One hybrid search over a library's moments: a full-text (BM25) and a vector (cosine) query,
at once, each with the filters pushed down as a where-clause, fused by reciprocal rank, then
checked against the videos table so only moments of finished videos (of their last run) come
back; if that check dropped so many that fewer than asked are left, asked again for more."""

from __future__ import annotations

from typing import Any

from vidtt.errors import LibraryError
from vidtt.library import schema, sql
from vidtt.library.fusion import fuse
from vidtt.library.records import Hit

CANDIDATES = 4  # each query asks for this many times `limit` (at least MIN_CANDIDATES)
MIN_CANDIDATES = 40
MAX_LIMIT = 1000
MAX_CANDIDATES = 20_000  # asked for at most, when unfinished videos' moments crowd the rest out
MAX_DISTANCE = 1.0  # cosine distance: a moment orthogonal to the query (or opposite) is no match


class Searcher:
    """A search over the two tables of a library whose vectors have `dim` values."""

    def __init__(self, videos: Any, moments: Any, dim: int, finished: dict[str, str] | None = None):
        self.videos, self.moments, self.dim = videos, moments, dim
        self.finished = finished  # every finished video's run, when the library keeps them

    def search(
        self,
        text: str,
        vector: Any,
        *,
        limit: int,
        filters: dict[str, Any],
    ) -> list[Hit]:
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise LibraryError(f"a search's limit must be 1 to {MAX_LIMIT}, not {limit!r}")
        query = (text or "").strip()
        if not query and vector is None:
            raise LibraryError("a search needs a text, a vector or both: give one")
        array = None if vector is None else self._query_vector(vector)
        where = sql.moment_filter(**filters)
        wanted = max(CANDIDATES * limit, MIN_CANDIDATES)
        while True:
            lists = self._candidates(query, array, where, wanted)
            hits, dropped = self._fused(lists, limit, bool(query), array is not None)
            full = any(len(ranked) == wanted for ranked in lists)
            if len(hits) == limit or not dropped or not full or wanted >= MAX_CANDIDATES:
                return hits
            wanted *= 4  # moments of videos being indexed crowded the candidates out

    def _candidates(
        self, query: str, vector: Any, where: str | None, wanted: int
    ) -> list[list[dict[str, Any]]]:
        """The full-text and the vector candidates (those asked for), queried at once."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = []
            if query:
                futures.append(pool.submit(self._text, query, where, wanted))
            if vector is not None:
                futures.append(pool.submit(self._vector, vector, where, wanted))
            return [future.result() for future in futures]

    def _fused(
        self, lists: list[list[dict[str, Any]]], limit: int, by_text: bool, by_vector: bool
    ) -> tuple[list[Hit], int]:
        """The best `limit` fused hits of finished videos, and how many others were dropped."""
        rows = {row["moment_id"]: row for ranked in lists for row in ranked}
        fused = fuse([[row["moment_id"] for row in ranked] for ranked in lists])
        runs = self._done_runs({rows[key]["video_id"] for key, _, _ in fused})
        hits: list[Hit] = []
        dropped = 0
        for key, score, ranks in fused:
            row = rows[key]
            if runs.get(row["video_id"]) != row["run"]:
                dropped += 1  # its video is being indexed again, or was removed
                continue
            hits.append(_hit(row, score, ranks, by_text, by_vector))
            if len(hits) == limit:
                break
        return hits, dropped

    def _text(self, query: str, where: str | None, wanted: int) -> list[dict[str, Any]]:
        from lancedb.query import MatchQuery

        # a MatchQuery is never parsed: quotes, colons, AND/OR in the text are plain words
        builder = self.moments.search(MatchQuery(query, "text"), query_type="fts")  # type: ignore[call-arg]
        if where:
            builder = builder.where(where, prefilter=True)
        return _rows(builder.select([*schema.HIT_COLUMNS, "_score"]).limit(wanted))

    def _query_vector(self, vector: Any) -> Any:
        import numpy as np

        array = np.asarray(vector, dtype=np.float32).reshape(-1)
        if array.shape[0] != self.dim or not np.isfinite(array).all() or not array.any():
            raise LibraryError(
                f"the query vector has {array.shape[0]} values (finite, not all zero: "
                f"{bool(np.isfinite(array).all() and array.any())}); this library holds "
                f"{self.dim}: embed the query with the library's embedder"
            )
        return array

    def _vector(self, array: Any, where: str | None, wanted: int) -> list[dict[str, Any]]:
        builder = self.moments.search(array, vector_column_name="vector").distance_type("cosine")
        if where:
            builder = builder.where(where, prefilter=True)
        rows = _rows(builder.select([*schema.HIT_COLUMNS, "_distance"]).limit(wanted))
        return [row for row in rows if row["_distance"] < MAX_DISTANCE]  # similar at all

    def _done_runs(self, video_ids: set[str]) -> dict[str, str]:
        """Each finished video's run id, for `video_ids`."""
        if not video_ids:
            return {}
        if self.finished is not None:
            return {key: self.finished[key] for key in video_ids if key in self.finished}
        where = f"{sql.one_of('video_id', sorted(video_ids))} AND status = {sql.text(schema.DONE)}"
        query = self.videos.search().where(where).select(["video_id", "run"])
        table = query.limit(len(video_ids)).to_arrow()
        return dict(zip(table.column("video_id").to_pylist(), table.column("run").to_pylist()))


def _rows(builder: Any) -> list[dict[str, Any]]:
    return builder.to_arrow().to_pylist()  # type: ignore[no-any-return]


def _hit(
    row: dict[str, Any], score: float, ranks: list[int | None], by_text: bool, by_vector: bool
) -> Hit:
    text_rank = ranks[0] if by_text else None
    vector_rank = ranks[-1] if by_vector else None
    return Hit(
        video_id=row["video_id"],
        path=row["path"],
        kind=row["kind"],
        start=row["start"],
        end=row["end"],
        text=row["text"],
        thumbnail=row["thumbnail"],
        score=score,
        text_rank=text_rank,
        vector_rank=vector_rank,
    )
