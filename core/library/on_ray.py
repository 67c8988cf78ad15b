"""`vidtt index --ray`: a library's videos indexed by a pool of Ray actors (docs/scale.md,
"Indexing a library on Ray").

The driver plans as a local run does (`vidtt index`), removes what is gone, then hands the
videos to index to actors, one video a call: each actor loads the `IndexWork`'s tools once,
opens the library by its URI and writes each video with `index_one` (`Library.put_video` is
safe with several writers). The driver keeps at most `IN_FLIGHT` calls queued per actor, so its
memory does not grow with the number of videos, counts each result into `Indexed` as it comes
(the same failure lines as a local run) and shows the same progress bar. Ctrl-C or a crash
keeps every video already written; the next run plans the rest.

The workers must reach the library where the driver has it: a folder at the same path on every
node (one machine, or a shared file system) or object storage (`s3://...`); an actor that cannot
open it stops the run with one line saying so. Ray is imported only inside functions.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from typing import Any

from vidtt.errors import ConfigError, LibraryError
from vidtt.jobs.ray import Actors, pool_size
from vidtt.jobs.ray_cluster import cluster, run_ray, vidtt_message
from vidtt.library.indexing import Indexed, IndexWork, index_one, indexed_into
from vidtt.library.records import Plan, Video
from vidtt.progress import Counter, TerminalBar

__all__ = ["IN_FLIGHT", "IndexActor", "actor_options", "index_on_ray", "open_on_worker"]

IN_FLIGHT = 2  # calls queued per actor: the one it runs and the next, so it never waits


def index_on_ray(
    library: Any,
    plan: Plan,
    work: IndexWork,
    *,
    address: str = "local",
    actors: Actors = 1,
    progress: bool = True,
) -> Indexed:
    """`index_videos` on Ray: remove what `plan` says is gone, then index each video left to
    index in a pool of `actors` Ray actors (a count, or a (min, max) range that grows while
    videos wait). `address` as `vidtt run --ray`: "local", "auto" or a cluster's address."""
    pool = pool_size(actors)
    done = Indexed(unchanged=len(plan.unchanged))
    if not plan.to_index:  # nothing for Ray to do: no cluster
        done.removed = library.remove([video.video_id for video in plan.removed])
        return done
    with ExitStack() as stack:
        with warnings.catch_warnings():  # Ray's processes fork from this one, lancedb loaded
            warnings.filterwarnings("ignore", "lancedb fork support", RuntimeWarning)
            ray = stack.enter_context(cluster(address, None, progress))  # before any write
        done.removed = library.remove([video.video_id for video in plan.removed])
        bar = Counter(TerminalBar("vidtt index", "video", shown=progress), len(plan.to_index))
        try:
            run_ray(lambda: _spread(ray, library.uri, work, pool, plan.to_index, done, bar))
        finally:
            bar.close()
            if done.indexed:
                library.refresh_indexes()  # the actors' writes, once (they never close theirs)
    return done


def _spread(
    ray: Any,
    uri: str,
    work: IndexWork,
    pool: tuple[int, int],
    videos: list[Video],
    done: Indexed,
    bar: Counter,
) -> None:
    """Index `videos` with a pool of `pool` (min, max) actors, counting into `done`."""
    actors = _Pool(ray, ray.remote(IndexActor).options(**actor_options(work)), uri, work)
    waiting = iter(videos)
    left = len(videos)
    try:
        for _ in range(pool[0]):
            actors.start()
        while left:
            if not actors.starting and len(actors.all) < pool[1] and actors.backlog(left):
                actors.start()  # a range grows one actor at a time while videos wait
            actors.fill(waiting)
            for one in actors.results():
                done.indexed += one.indexed
                done.moments += one.moments
                done.failed += one.failed
                left -= 1
                bar.update()
    finally:
        actors.stop()


class _Pool:
    """The driver's view of the actors: those starting (not yet given work, so a range's actor
    that the cluster cannot place holds no video), those ready with their calls in flight."""

    def __init__(self, ray: Any, remote: Any, uri: str, work: IndexWork) -> None:
        self.ray, self.remote, self.uri, self.work = ray, remote, uri, work
        self.all: list[Any] = []
        self.starting: dict[Any, Any] = {}  # ready ref: actor
        self.load: dict[int, int] = {}  # ready actor's place in `all`: calls in flight
        self.calls: dict[Any, tuple[int, Video]] = {}  # call ref: its actor's place, its video

    def start(self) -> None:
        actor = self.remote.remote(self.uri, self.work)
        self.all.append(actor)
        self.starting[actor.__ray_ready__.remote()] = actor

    def backlog(self, left: int) -> bool:
        """Whether videos wait beyond what the ready actors hold."""
        return left > len(self.calls)

    def fill(self, waiting: Iterator[Video]) -> None:
        """Give each ready actor calls up to `IN_FLIGHT` while videos wait."""
        for place, load in self.load.items():
            for _ in range(IN_FLIGHT - load):
                video = next(waiting, None)
                if video is None:
                    return
                self.calls[self.all[place].index.remote(video)] = (place, video)
                self.load[place] += 1

    def results(self) -> list[Indexed]:
        """Wait for the next thing to happen: an actor ready (its failure to start raised) or
        calls done (their results)."""
        ready, _ = self.ray.wait([*self.starting, *self.calls], num_returns=1)
        found = []
        for ref in ready:
            if ref in self.starting:
                self.ray.get(ref)  # an actor that could not start: its error
                self.load[self.all.index(self.starting.pop(ref))] = 0
            else:
                place, video = self.calls.pop(ref)
                found.append(self.answer(ref, video))
                self.load[place] -= 1
        return found

    def answer(self, ref: Any, video: Video) -> Indexed:
        """A call's result; an actor lost meanwhile (out of memory, a node gone) stops the run
        in one line (what was indexed stays)."""
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayActorError as exc:
            why = vidtt_message(exc) or (str(exc).strip().splitlines() or ["died"])[0]
            raise ConfigError(
                f"the actor indexing {video.path} stopped ({why}): the videos indexed so far "
                "are kept; run vidtt index again for the rest"
            ) from None

    def stop(self) -> None:
        """End every actor: a video one was writing stays `indexing`, indexed again next run."""
        for actor in self.all:
            self.ray.kill(actor)


def actor_options(work: IndexWork) -> dict[str, Any]:
    """An actor's resources: one CPU, and one GPU when the embedder or the notes' model runs
    on cuda."""
    device = str(work.embedder_options.get("device", "cpu"))
    backend = str(getattr(work.notes, "backend", None) or "")
    gpu = device.startswith("cuda") or backend.startswith("cuda")
    return {"num_cpus": 1, "num_gpus": 1 if gpu else 0}


class IndexActor:
    """A Ray actor that indexes videos into the library at `uri`: the work's tools loaded once,
    one video a call."""

    def __init__(self, uri: str, work: IndexWork) -> None:
        self.tools = on_this_gpu(work).load()
        self.library = open_on_worker(uri, self.tools)

    def index(self, video: Video) -> Indexed:
        """One video indexed: its moments counted, or its failure kept with its reason."""
        one = Indexed()
        indexed_into(one, video, lambda: index_one(self.library, video, self.tools))
        return one


def on_this_gpu(work: IndexWork) -> IndexWork:
    """`work` with `device=cuda:N` read as the GPU Ray gave this actor (Ray shows it as 0)."""
    device = str(work.embedder_options.get("device", ""))
    if not device.startswith("cuda:"):
        return work
    return replace(work, embedder_options={**work.embedder_options, "device": "cuda"})


def open_on_worker(uri: str, tools: Any) -> Any:
    """The library at `uri` as a worker sees it, holding the same embedder's vectors; one
    line when this machine cannot reach it (a local folder that is not here)."""
    import socket

    from vidtt.library import Library, locate

    folder = locate(uri).folder
    if folder is not None and not folder.is_dir():
        raise LibraryError(
            f"the library {uri} is not on the Ray worker {socket.gethostname()}: indexing on "
            "Ray needs the library in a folder every node sees at the same path (one machine, "
            "a shared file system) or in object storage (s3://...)"
        )
    return Library.open(uri, dim=tools.dimension(), embedder=tools.signature(), create=False)
