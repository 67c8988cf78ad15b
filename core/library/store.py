"""`Library`: a video library on LanceDB — per video its moments, with text and a vector, kept
incrementally and safely, and searched by text and vector at once.

    with Library.open("talks", dim=512, embedder="siglip") as library:
        plan = library.plan(Video.from_path(p) for p in paths)
        library.remove(v.video_id for v in plan.removed)
        for video in plan.to_index:
            library.put_video(video, moments_of(video))  # an iterable: any length
    hits = Library.open("talks").search("a forklift near the door", vector)

A video's moments become searchable only once all are written (see `put_video`); a search
sees only videos whose last indexing finished. docs/library.md says why LanceDB, the layout,
and what two writers or a kill can and cannot do.
"""

from __future__ import annotations

import functools
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from vidtt.errors import LibraryError, LibraryMismatchError
from vidtt.library import schema, sql
from vidtt.library.location import Location, locate
from vidtt.library.locking import write_lock
from vidtt.library.records import KINDS, Hit, Moment, Plan, Video, resolved
from vidtt.library.search import Searcher

T = TypeVar("T")
SCAN_ROWS = 4096  # rows per batch when a table is read through (plan)
REFRESH_ROWS = 20_000  # moments written by this process before its indexes are refreshed
REFRESH_VIDEOS = 100  # or videos put (each put is a few commits: small files to compact)
VECTOR_INDEX_MIN_VALUES = 10_000_000  # rows x dim (40 MB of float32) before a vector index
VECTOR_INDEX_FLOOR = 4096  # never fewer rows (an index needs rows to train on)
VECTOR_INDEX_ROWS = 50_000  # an index from this many rows whatever the dimension (scans cost rows)
FINISHED_KEPT = 200_000  # videos whose finished runs a library keeps in memory between searches
RETRIES = 5  # tries of a commit refused by a conflicting one (object storage)
INDEX_CACHE = 512 << 20  # bytes of opened indexes a process keeps (LanceDB's own default: GiBs)
METADATA_CACHE = 64 << 20  # bytes of manifests and file metadata: each commit adds some


def _lancedb() -> Any:
    """lancedb, imported now (its Rust log quiet unless LANCE_LOG says otherwise)."""
    os.environ.setdefault("LANCE_LOG", "error")
    try:
        import lancedb
    except ImportError:
        raise LibraryError(
            "the video library needs lancedb: pip install 'vidtt[library]'"
        ) from None
    return lancedb


def _connect(uri: str, storage_options: dict[str, str] | None) -> Any:
    """A LanceDB connection with a session of its own whose caches are bounded (a writer
    connects anew after each refresh of its indexes while it writes: some of a session's
    state grows with every commit, a few a video, whatever its caps)."""
    lancedb = _lancedb()
    session = lancedb.Session(
        index_cache_size_bytes=INDEX_CACHE, metadata_cache_size_bytes=METADATA_CACHE
    )
    return lancedb.connect(
        uri,
        read_consistency_interval=timedelta(0),  # every read sees the latest commit
        storage_options=storage_options,
        session=session,
    )


class Library:
    """A library of indexed videos (open it with `Library.open`)."""

    def __init__(
        self,
        location: Location,
        name: str,
        db: Any,
        videos: Any,
        moments: Any,
        storage_options: dict[str, str] | None = None,
    ):
        self.location, self.name = location, name
        self._db, self._videos, self._moments = db, videos, moments
        meta = moments.schema.metadata or {}
        self.embedder: str = meta.get(schema.EMBEDDER_KEY, b"").decode("utf-8")
        self.dim: int = moments.schema.field("vector").type.list_size
        self._unrefreshed = 0  # moments this process wrote since its last index refresh
        self._finished: tuple[int, dict[str, str] | None] | None = None  # (version, runs)
        self._unrefreshed_videos = 0
        self._storage_options = storage_options

    @property
    def uri(self) -> str:
        return self.location.uri

    # -- opening -----------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        name_or_uri: str,
        *,
        dim: int | None = None,
        embedder: str | None = None,
        create: bool = True,
        storage_options: dict[str, str] | None = None,
    ) -> Library:
        """The library `name_or_uri` (a name under `VIDTT_LIBRARY_DIR`, a folder, or a URI
        such as `s3://bucket/lib`). Made when missing, with `create` and both `dim` and
        `embedder` given. `LibraryMismatchError` when it holds another embedder's vectors."""
        location = locate(name_or_uri)
        absent = location.folder is not None and not location.folder.exists()
        if absent and not (create and dim and embedder):
            raise _missing(name_or_uri, location)
        db = _connect(location.uri, storage_options)
        tables = set(db.list_tables().tables)
        if not {schema.VIDEOS, schema.MOMENTS} <= tables:
            if not (create and dim and embedder):
                raise _missing(name_or_uri, location)
            _check_new(dim, embedder)
            with write_lock(location.folder):
                _create_tables(db, dim, embedder)
        library = cls(
            location,
            str(name_or_uri),
            db,
            db.open_table(schema.VIDEOS),
            db.open_table(schema.MOMENTS),
            storage_options,
        )
        library._check(dim, embedder)
        if create and dim and embedder:
            library._add_recipes()
        return library

    def _add_recipes(self) -> None:
        """A library made before videos had a recipe gains the column (null: any recipe
        differs, so the next `vidtt index` writes each video again, once)."""
        if "recipe" not in self._videos.schema.names:
            with self._writing():
                self._videos.add_columns(schema.recipe_field())

    def _check(self, dim: int | None, embedder: str | None) -> None:
        meta = self._moments.schema.metadata or {}
        found = meta.get(schema.FORMAT_KEY, b"").decode()
        if found != schema.FORMAT:
            raise LibraryError(
                f"the library {self.name} has format {found or 'unknown'}, this vidtt reads "
                f"format {schema.FORMAT}: upgrade vidtt, or index into a new library"
            )
        if (dim is not None and dim != self.dim) or (embedder and embedder != self.embedder):
            raise LibraryMismatchError(
                f"the library {self.name} holds {self.dim}-value vectors from "
                f"{self.embedder!r}, not {dim or self.dim}-value ones from "
                f"{embedder or self.embedder!r}: index into a new library instead"
            )

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Refresh the indexes if this process wrote since their last refresh."""
        if self._unrefreshed or self._unrefreshed_videos:
            self.refresh_indexes()

    # -- what to index ---------------------------------------------------------------------------
    def plan(
        self,
        videos: Iterable[Video | tuple[str, int, int]],
        *,
        within: Sequence[str] | None = None,
        recipe: str = "",
    ) -> Plan:
        """Sort `videos` (as on disk now) into new, changed and unchanged by path, size and
        modification time, and the `recipe` indexing them now (`IndexWork.recipe`), against
        what is indexed; `removed` is what is indexed and was not given (only under the
        folders or URL prefixes `within`, when given). Reads the videos table in batches:
        memory grows with the videos given, not the library."""
        given: dict[str, Video] = {}
        for item in videos:
            video = item if isinstance(item, Video) else Video(*item)
            video = Video(resolved(video.path), video.size, video.mtime_ns, video.duration)
            given[video.video_id] = video
        stored: dict[str, bool] = {}  # video id: indexed, unchanged and done
        plan = Plan()
        scopes = [_scope(prefix) for prefix in within or ()]
        for row in self._scan(self._videos, schema.VIDEO_COLUMNS):
            kept = given.get(row["video_id"])
            if kept is None:
                if within is None or any(_under(row["path"], s) for s in scopes):
                    plan.removed.append(_stored(row))
                continue
            now = (schema.DONE, kept.size, kept.mtime_ns, recipe)
            stored[kept.video_id] = (
                row["status"],
                row["size"],
                row["mtime_ns"],
                row["recipe"],
            ) == now
        for key, video in given.items():
            if key not in stored:
                plan.new.append(video)
            else:
                (plan.unchanged if stored[key] else plan.changed).append(video)
        return plan

    def _scan(self, table: Any, columns: Sequence[str]) -> Iterator[dict[str, Any]]:
        reader = table.search().select(list(columns)).limit(None).to_batches(SCAN_ROWS)
        for batch in reader:
            yield from batch.to_pylist()

    # -- writing ---------------------------------------------------------------------------------
    def put_video(self, video: Video, moments: Iterable[Moment], recipe: str = "") -> int:
        """Replace `video`'s moments with `moments` (any iterable: written in batches, memory
        flat), and return how many. The video is marked `indexing` first and `done` last, so
        until this returns a search does not see it, and a kill leaves it `indexing`: planned
        as changed next time, never half-visible. The moments are appended without the write
        lock (Lance commits concurrent appends safely), so a slow iterable holds up no one.
        If another writer starts the same video meanwhile, the later start wins (0 here).
        `recipe` names what made the moments, so `plan` sees a video indexed otherwise."""
        video = Video(resolved(video.path), video.size, video.mtime_ns, video.duration)
        run = uuid.uuid4().hex[:16]
        self._mark_indexing(video, run, recipe)
        count = self._append(video, run, moments)
        if not self._mark_done(video, run, count):
            count = 0
        self._unrefreshed += count
        self._unrefreshed_videos += 1
        if self._unrefreshed >= REFRESH_ROWS or self._unrefreshed_videos >= REFRESH_VIDEOS:
            self.refresh_indexes()
            self._reconnect()  # the writing goes on: drop what the old session gathered
        return count

    def _mark_indexing(self, video: Video, run: str, recipe: str) -> None:
        """The video's row, upserted as `indexing` under the new run (its first `added_at`
        kept): from now a search skips the video's moments, old and new."""
        with self._writing():
            now = time.time()
            row = schema.video_row(video, status=schema.INDEXING, run=run, now=now, recipe=recipe)
            row["added_at"] = self._added_at(sql.text(video.video_id)) or row["added_at"]
            upsert = self._videos.merge_insert("video_id")
            upsert = upsert.when_matched_update_all().when_not_matched_insert_all()
            self._retry(lambda: upsert.execute([row]))

    def _mark_done(self, video: Video, run: str, count: int) -> bool:
        """The video marked `done`, if its row still has this run, then its moments of other
        runs (the old ones, a killed run's) deleted. When another writer began indexing the
        same video since, that one wins: this run's moments are deleted instead (False)."""
        key, mine = sql.text(video.video_id), sql.text(run)
        done = {"status": schema.DONE, "indexed_at": time.time(), "moments": count}
        with self._writing():
            where = f"video_id = {key} AND run = {mine}"  # a conditional update: atomic
            won = self._retry(lambda: self._videos.update(where=where, values=done)).rows_updated
            stale = f"video_id = {key} AND run {'!=' if won else '='} {mine}"
            self._retry(lambda: self._moments.delete(stale))
        return bool(won)

    def _append(self, video: Video, run: str, moments: Iterable[Moment]) -> int:
        import pyarrow as pa

        table_schema = self._moments.schema
        batches = schema.moment_batches(video, run, moments, table_schema)
        first = next(batches, None)
        if first is None:
            return 0
        count = [0]

        def counted() -> Iterator[pa.RecordBatch]:
            for batch in _chain(first, batches):
                count[0] += batch.num_rows
                yield batch

        self._moments.add(pa.RecordBatchReader.from_batches(table_schema, counted()))
        return count[0]

    def _added_at(self, key: str) -> float | None:
        rows = self._videos.search().where(f"video_id = {key}").select(["added_at"]).limit(1)
        found = rows.to_list()
        return found[0]["added_at"] if found else None

    def remove(self, video_ids: Iterable[str]) -> int:
        """Forget these videos (their moments first, then their rows); how many were given."""
        ids = list(dict.fromkeys(video_ids))
        with self._writing():
            for start in range(0, len(ids), 500):
                where = sql.one_of("video_id", ids[start : start + 500])
                self._retry(functools.partial(self._moments.delete, where))
                self._retry(functools.partial(self._videos.delete, where))
        self._unrefreshed_videos += len(ids)
        return len(ids)

    def refresh_indexes(self, vector_index_min_rows: int | None = None) -> None:
        """Bring the indexes up to date, cheaply: small files compacted, new rows added to the
        full-text and scalar indexes (not rebuilt), versions older than a week dropped; the
        vector index (IVF-PQ) made once the moments reach `vector_index_min_rows` (default:
        when an exact scan would read 40 MB of vectors, 13k rows of 768 values, and at most
        50k rows: an exact scan's cost grows with the rows more than their size)."""
        if vector_index_min_rows is None:
            by_size = max(VECTOR_INDEX_FLOOR, VECTOR_INDEX_MIN_VALUES // self.dim)
            vector_index_min_rows = min(by_size, VECTOR_INDEX_ROWS)
        with self._writing():
            self._retry(self._moments.optimize)
            self._retry(self._videos.optimize)
            names = {index.name for index in self._moments.list_indices()}
            if "vector_idx" not in names and self._moments.count_rows() >= vector_index_min_rows:
                self._vector_index()
        self._unrefreshed = self._unrefreshed_videos = 0

    def _reconnect(self) -> None:
        """The tables opened again on a new connection and session (what the old one had
        gathered freed)."""
        self._db = _connect(self.location.uri, self._storage_options)
        self._videos = self._db.open_table(schema.VIDEOS)
        self._moments = self._db.open_table(schema.MOMENTS)

    def _vector_index(self) -> None:
        from lancedb.index import IvfPq

        config = IvfPq(distance_type="cosine", num_sub_vectors=_sub_vectors(self.dim))
        self._moments.create_index("vector", config=config, name="vector_idx")

    def _writing(self) -> Any:
        return write_lock(self.location.folder)

    @staticmethod
    def _retry(action: Callable[[], T]) -> T:
        """`action`, tried again when a concurrent commit refused it (object storage)."""
        for attempt in range(RETRIES):
            try:
                return action()
            except (OSError, RuntimeError, ValueError) as exc:
                if "conflict" not in str(exc).lower() or attempt == RETRIES - 1:
                    raise
                time.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    # -- reading ---------------------------------------------------------------------------------
    def search(
        self,
        text: str,
        vector: Any = None,
        *,
        limit: int = 20,
        kinds: Sequence[str] | None = None,
        path_glob: str | None = None,
        min_duration: float | None = None,
        max_duration: float | None = None,
        since: datetime | float | str | None = None,
        until: datetime | float | str | None = None,
    ) -> list[Hit]:
        """The best `limit` moments for `text` (full-text, BM25) and `vector` (cosine), fused
        by reciprocal rank; either may be left out. Filters: moment kinds, a glob on the
        video's path (`*` spans folders), its duration in seconds, its modification time
        (`since` at or after, `until` before: a datetime, an ISO 8601 date or seconds since
        the epoch). Only finished videos are seen."""
        if kinds:
            unknown = sorted(set(kinds) - set(KINDS))
            if unknown:
                raise LibraryError(f"no moment kind {unknown[0]!r}: use {', '.join(KINDS)}")
        filters = {
            "kinds": kinds,
            "path_glob": path_glob,
            "min_duration": min_duration,
            "max_duration": max_duration,
            "since": since,
            "until": until,
        }
        searcher = Searcher(self._videos, self._moments, self.dim, self._finished_runs())
        return searcher.search(text, vector, limit=limit, filters=filters)

    def _finished_runs(self) -> dict[str, str] | None:
        """Every finished video's run id, read once per version of the videos table and kept
        between searches (None past `FINISHED_KEPT` videos: each search asks for its own)."""
        version = self._videos.version
        if self._finished is None or self._finished[0] != version:
            where = f"status = {sql.text(schema.DONE)}"
            query = self._videos.search().where(where).select(["video_id", "run"])
            table = query.limit(FINISHED_KEPT + 1).to_arrow()
            runs = dict(zip(table.column("video_id").to_pylist(), table.column("run").to_pylist()))
            self._finished = (version, runs if len(runs) <= FINISHED_KEPT else None)
        return self._finished[1]

    def video_path(self, video_id: str) -> str | None:
        """The path (or URL) of the video indexed as `video_id`; None when there is none."""
        where = f"video_id = {sql.text(video_id)}"
        rows = self._videos.search().where(where).select(["path"]).limit(1).to_list()
        return str(rows[0]["path"]) if rows else None

    def stats(self) -> dict[str, Any]:
        """What the library holds: its URI, embedder, vector size, videos (all, done),
        moments, and index names."""
        return {
            "uri": self.uri,
            "embedder": self.embedder,
            "dim": self.dim,
            "videos": self._videos.count_rows(),
            "done": self._videos.count_rows(f"status = {sql.text(schema.DONE)}"),
            "moments": self._moments.count_rows(),
            "indexes": sorted(index.name for index in self._moments.list_indices()),
        }


def _chain(first: T, rest: Iterator[T]) -> Iterator[T]:
    yield first
    yield from rest


def _create_tables(db: Any, dim: int, embedder: str) -> None:
    """The two tables and their first indexes (made empty: Lance indexes an empty table),
    unless another process made them first."""
    from lancedb.index import FTS, BTree

    tables = set(db.list_tables().tables)
    if schema.VIDEOS not in tables:
        videos = db.create_table(schema.VIDEOS, schema=schema.videos_schema())
        videos.create_index("video_id", config=BTree(), name="video_id_idx")
    if schema.MOMENTS not in tables:
        moments = db.create_table(
            schema.MOMENTS,
            schema=schema.moments_schema(dim, embedder),
        )
        moments.create_index("text", config=FTS(), name="text_idx")
        moments.create_index("video_id", config=BTree(), name="video_id_idx")


def _check_new(dim: int, embedder: str) -> None:
    if isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim <= 65536:
        raise LibraryError(f"a library's vectors need 1 to 65536 values, not {dim!r}")
    if not embedder.strip():
        raise LibraryError("a library needs its embedder's name: give one")


def _missing(name: str, location: Location) -> LibraryError:
    return LibraryError(
        f"no video library {name} at {location.uri}: index videos into it first "
        "(vidtt index PATH --library NAME)"
    )


def _sub_vectors(dim: int) -> int:
    """PQ sub-vectors: the largest divisor of `dim` up to dim / 8 (8 values each, or more)."""
    for count in range(max(1, dim // 8), 0, -1):
        if dim % count == 0:
            return count
    return 1


def _scope(prefix: str) -> str:
    return prefix if "://" in prefix else resolved(prefix).rstrip(os.sep) + os.sep


def _under(path: str, scope: str) -> bool:
    return path.startswith(scope) or path + os.sep == scope


def _stored(row: dict[str, Any]) -> Video:
    return Video(row["path"], row["size"], row["mtime_ns"], row["duration"])
