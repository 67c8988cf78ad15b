"""The video library (issue 39): search latency, index throughput against `vidtt summarize`,
peak memory while indexing, and what re-indexing after one change touches.

    python benchmarks/library.py [--videos 1000] [--moments 100000] [--queries 200]
        [--index-videos 20] [--memory-videos 10,100,1000] [--summarize-videos 3] [--dim 7]

The embedder is `colour` (vidtt.testing.embedders: colour coverage of the pixels, 7 values,
no model). Every library is made here, in a temporary folder.

1. Search latency: `Library.search(text, vector, limit=20)`, hybrid (BM25 on the text and
   cosine on the colour embedder's vector of the text), on two libraries written directly
   with `put_video`: `--videos` videos of 10 moments each, and `--moments` moments at 100 a
   video. A moment is a segment note ("a red van stops near the door") from word lists, its
   vector the colour embedder's vector of the note plus noise (`--dim` other than 7: random
   unit vectors, and random query vectors). Videos sit in 10 camera folders. Indexes are
   refreshed as `vidtt index` leaves them (no vector index below 1.4M moments of 7 values: an
   exact scan). `--queries` different queries after 10 warm-up ones, without and with a path
   filter (`*/cam3/*`: a tenth of the videos); p50, p95 and the mean number of hits, in ms.
   Goal: p95 under 50 ms.
2. Index throughput: `vidtt index FOLDER --embedder colour` (the console script, process start
   included, the plugin installed through a temporary site folder on PYTHONPATH) on
   `--index-videos` generated videos (20 s, 320x240, 24 fps, a coloured square over a known
   stretch), against the peer the issue names, `vidtt summarize VIDEO` run per video with the
   tiny llava model of benchmarks/throughput.py on the CPU (its defaults; on the first
   `--summarize-videos` videos). Also `vidtt index --shots` (the scene sampler's shots too),
   and `vidtt index --notes` with the same model on the summarized videos (one process: the
   same notes as summarize, plus the frames; a fresh note store, so every note is made).
   Reported: video hours per hour of wall time, and the ratio to summarize.
3. Peak memory while indexing: the index process's peak RSS (its VmHWM, polled) for each
   of `--memory-videos` counts (hard links to the generated videos, each link a video of its
   own; each a fresh library; it should not grow with the count), with
   the wall time, the library's size on disk (with and without its JPEG thumbnails), and the
   time a video adds (the difference of the largest and smallest runs, per video).
4. Re-indexing after one video changes: in the largest library of 3, one video is made again
   (another colour); `vidtt index` on the same folder is timed, its count line must be
   "1 indexed, N-1 unchanged", and the tables must show that only that video's row
   (`indexed_at`, `run`) and moments changed (checked; the benchmark fails otherwise).
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

VIDTT = str(Path(sys.executable).with_name("vidtt"))
SECONDS, FPS, SIZE = 20, 24, (320, 240)
COLOURS = {"red": (220, 30, 30), "green": (30, 180, 30), "blue": (30, 60, 220)}
WORDS = {
    "colour": ["red", "green", "blue", "yellow", "white", "black", "grey"],
    "thing": ["car", "van", "truck", "forklift", "person", "bicycle", "dog", "bus", "pallet"],
    "action": [
        "passes the gate",
        "stops near the door",
        "turns left at the corner",
        "is parked by the wall",
        "crosses the yard",
        "leaves the loading bay",
        "enters from the right",
        "waits at the barrier",
        "drops a box",
        "backs into the dock",
    ],
}
CAMERAS, PATH_FILTER = 10, "*/cam3/*"
PER_VIDEO_SMALL, PER_VIDEO_LARGE = 10, 100


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=1000, help="part 1: a library's videos")
    parser.add_argument("--moments", type=int, default=100_000, help="part 1: moments")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--dim", type=int, default=7, help="part 1's vectors (7: colour's)")
    parser.add_argument("--index-videos", type=int, default=20)
    parser.add_argument("--memory-videos", default="10,100,1000")
    parser.add_argument("--summarize-videos", type=int, default=3)
    return parser.parse_args()


# -- 1. search latency ----------------------------------------------------------------------
def note(rng: random.Random) -> str:
    return f"a {rng.choice(WORDS['colour'])} {rng.choice(WORDS['thing'])} " + rng.choice(
        WORDS["action"]
    )


def query(rng: random.Random) -> str:
    """A user's query: a colour and a thing, and half the time a few words of an action."""
    action = rng.choice(WORDS["action"]).split()
    words = [rng.choice(WORDS["colour"]), rng.choice(WORDS["thing"])]
    return " ".join(words + (action[:2] if rng.random() < 0.5 else []))


def vectors(texts: list[str], dim: int, rng: Any, noise: float = 0.3) -> Any:
    """Unit vectors for `texts`: the colour embedder's plus `noise` (dim 7), else random."""
    import numpy as np

    from vidtt.testing.embedders import ColourEmbedder

    if dim == 7:
        embedder = ColourEmbedder()
        rows = embedder.embed_texts(texts, embedder.options())
        rows = rows + noise * rng.random((len(texts), 7))
    else:
        rows = rng.standard_normal((len(texts), dim))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def build(folder: Path, videos: int, per_video: int, dim: int) -> tuple[Any, float]:
    """A library of `videos` videos of `per_video` note moments; it and the seconds taken."""
    import numpy as np

    from vidtt.library import Library, Moment, Video

    rng, words = np.random.default_rng(0), random.Random(0)
    started = time.perf_counter()
    library = Library.open(str(folder), dim=dim, embedder="colour" if dim == 7 else f"r{dim}")
    for number in range(videos):
        texts = [note(words) for _ in range(per_video)]
        rows = vectors(texts, dim, rng)
        moments = [
            Moment("note", 2.0 * k, 2.0 * k + 2, text, rows[k]) for k, text in enumerate(texts)
        ]
        path = f"/data/cam{number % CAMERAS}/2026-01-{number:05d}.mp4"
        library.put_video(Video(path, 10_000_000, number, 2.0 * per_video), moments)
    library.close()  # the indexes refreshed, as `vidtt index` leaves them
    return library, time.perf_counter() - started


def latencies(library: Any, queries: int, dim: int, path_glob: str | None) -> list[float]:
    """Milliseconds per search of `queries` different queries, after 10 warm-up ones; the
    mean number of hits last."""
    import numpy as np

    words, rng = random.Random(1), np.random.default_rng(1)
    texts = [query(words) for _ in range(queries + 10)]
    rows = vectors(texts, dim, rng, noise=0.0)  # a query's vector: the text's own
    times, hits = [], 0
    for k, (text, vector) in enumerate(zip(texts, rows, strict=True)):
        started = time.perf_counter()
        found = library.search(text, vector, limit=20, path_glob=path_glob)
        if k >= 10:
            times.append(1000 * (time.perf_counter() - started))
            hits += len(found)
    return [*times, hits / queries]


def search_part(args: argparse.Namespace, root: Path) -> None:
    print(
        f"\n## 1. Search latency: `Library.search(text, vector, limit=20)`, {args.queries} "
        f"queries after 10 warm-up, {args.dim}-value vectors\n"
    )
    print("| library | moments | written in | filter | p50 ms | p95 ms | hits | p95 < 50 ms |")
    print("|---|---:|---:|---|---:|---:|---:|---|")
    sizes = [(args.videos, PER_VIDEO_SMALL), (args.moments // PER_VIDEO_LARGE, PER_VIDEO_LARGE)]
    for number, (videos, per_video) in enumerate(sizes):
        library, seconds = build(root / f"search-{number}", videos, per_video, args.dim)
        name = f"{videos} videos x {per_video}"
        for path_glob in (None, PATH_FILTER):
            *times, hits = latencies(library, args.queries, args.dim, path_glob)
            p50, p95 = statistics.median(times), statistics.quantiles(times, n=20)[18]
            print(
                f"| {name} | {videos * per_video} | {seconds:.0f} s | {path_glob or '-'} "
                f"| {p50:.1f} | {p95:.1f} | {hits:.1f} | {'yes' if p95 < 50 else 'no'} |",
                flush=True,
            )


# -- 2-4. indexing ----------------------------------------------------------------------------
def plugin_env(root: Path) -> dict[str, str]:
    """The environment of a vidtt process that has the colour embedder installed."""
    from vidtt.testing.embedders import colour_plugin

    (root / "cache").mkdir()
    return {
        **colour_plugin(root / "site"),
        "VIDTT_LIBRARY_DIR": str(root / "libraries"),
        "VIDTT_CACHE_DIR": str(root / "cache"),
    }


def make_videos(folder: Path, count: int) -> list[Path]:
    from vidtt.testing import make_square_video

    folder.mkdir(parents=True)
    paths = []
    for n in range(count):
        start = 1.0 + (n * 5.3) % (SECONDS - 6)
        colour = list(COLOURS.values())[n % len(COLOURS)]
        path = folder / f"clip-{n:04d}.mp4"
        make_square_video(path, (start, start + 3), colour, seconds=SECONDS, fps=FPS, size=SIZE)
        paths.append(path)
    return paths


def vidtt(env: dict[str, str], *args: str) -> tuple[float, int, str]:
    """Run the console script: its wall seconds, peak RSS in bytes (its VmHWM, read while it
    runs: `wait4`'s ru_maxrss would count this process's memory at the fork), its stderr."""
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(
            [VIDTT, *args], env=env, stdout=subprocess.DEVNULL, stderr=errors
        )
        peak = 0
        while process.poll() is None:
            peak = max(peak, _peak_kib(process.pid))
            time.sleep(0.02)
        seconds = time.perf_counter() - started
        errors.seek(0)
        text = errors.read().decode("utf-8", "replace")
    if process.returncode:
        raise SystemExit(f"vidtt {' '.join(args[:1])} failed:\n{text[-3000:]}")
    return seconds, peak * 1024, text


def _peak_kib(pid: int) -> int:
    """A running process's peak resident size so far (VmHWM), 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def index(env: dict[str, str], folder: Path, library: Path, *more: str) -> tuple[float, int, str]:
    args = ["index", str(folder), "--library", str(library), "--embedder", "colour", "--quiet"]
    return vidtt(env, *args, *more)


def subset(root: Path, name: str, videos: list[Path]) -> Path:
    """A folder of links to `videos` (each indexed under the link's resolved target)."""
    folder = root / name
    folder.mkdir()
    for video in videos:
        (folder / video.name).symlink_to(video)
    return folder


def copies(root: Path, name: str, videos: list[Path], count: int) -> Path:
    """A folder of `count` hard links to `videos`, taken in turn: distinct paths (so distinct
    videos to the library) without `count` files to encode."""
    import os

    folder = root / name
    folder.mkdir()
    for n in range(count):
        video = videos[n % len(videos)]
        os.link(video, folder / f"{video.stem}-{n:05d}.mp4")
    return folder


def disk(folder: Path, skip: str | None = None) -> int:
    return sum(
        p.stat().st_size
        for p in folder.rglob("*")
        if p.is_file() and not (skip and skip in p.parts)
    )


def throughput_part(
    args: argparse.Namespace, root: Path, env: dict[str, str], clips: list[Path]
) -> None:
    from throughput import make_assets

    folder = subset(root, "throughput", clips[: args.index_videos])
    seconds, peak, _ = index(env, folder, root / "lib-throughput")
    shots, shots_peak, _ = index(env, folder, root / "lib-shots", "--shots")
    _, model = make_assets(0)
    peers = clips[: args.summarize_videos]
    summarize, peer_peak = 0.0, 0
    for clip in peers:
        out = root / f"{clip.stem}.json"
        command = ["summarize", str(clip), "--model", str(model), "--backend", "cpu"]
        took, most, _ = vidtt(env, *command, "--output", str(out))
        summarize, peer_peak = summarize + took, max(peer_peak, most)
    noted_env = {**env, "VIDTT_CACHE_DIR": str(root / "cache-notes")}  # no note made above
    noting = ("--notes", "--model", str(model), "--backend", "cpu")
    notes_folder = subset(root, "notes", peers)
    notes, notes_peak, _ = index(noted_env, notes_folder, root / "lib-notes", *noting)
    peer = len(peers) * SECONDS / summarize if peers else float("nan")
    print(
        f"\n## 2. Index throughput: {SECONDS} s videos "
        f"({SIZE[0]}x{SIZE[1]}, {FPS} fps), a frame every 2 s\n"
    )
    print("| command | videos | wall s | video h / h | vs summarize | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|---:|")
    runs = [
        ("`vidtt index FOLDER --embedder colour`", args.index_videos, seconds, peak),
        ("`vidtt index FOLDER --embedder colour --shots`", args.index_videos, shots, shots_peak),
        ("`vidtt index FOLDER --notes` (tiny llava, CPU: summarize's notes too)", len(peers),
         notes, notes_peak),
        ("`vidtt summarize VIDEO` (tiny llava, CPU; a process each)", len(peers), summarize,
         peer_peak),
    ]  # fmt: skip
    for name, count, took, most in runs:
        rate = count * SECONDS / took  # video seconds per second = hours per hour
        print(
            f"| {name} | {count} | {took:.1f} | {rate:.1f} | {rate / peer:.2f}x | {most >> 20} |",
            flush=True,
        )


def memory_part(
    args: argparse.Namespace, root: Path, env: dict[str, str], clips: list[Path]
) -> tuple[Path, Path]:
    """Part 3's table; the largest library's folder and library path, for part 4."""
    counts = sorted(int(n) for n in args.memory_videos.split(","))
    print(f"\n## 3. Peak memory while indexing ({SECONDS} s videos, a fresh library each)\n")
    print("| videos | wall s | peak RSS MiB | library MiB | without thumbnails MiB |")
    print("|---:|---:|---:|---:|---:|")
    runs = []
    for count in counts:
        folder = copies(root, f"memory-{count}", clips, count)
        library = root / f"lib-{count}"
        seconds, peak, _ = index(env, folder, library)
        runs.append(seconds)
        mib = 1 << 20
        print(
            f"| {count} | {seconds:.1f} | {peak / mib:.0f} | {disk(library) / mib:.2f} "
            f"| {disk(library, 'thumbnails') / mib:.2f} |",
            flush=True,
        )
    if len(counts) > 1:
        each = (runs[-1] - runs[0]) / (counts[-1] - counts[0])
        print(f"\nA video adds {each:.2f} s ({SECONDS / each:.0f} video h / h past start-up).")
    return folder, library


def rows(library: Path) -> tuple[dict[str, tuple[float, str]], dict[str, set[str]]]:
    """Per video id: (indexed_at, run), and its moments' ids, read from the Lance tables."""
    import lancedb

    from vidtt.library import schema

    db = lancedb.connect(str(library))
    videos = db.open_table(schema.VIDEOS).to_arrow().to_pylist()
    moments = db.open_table(schema.MOMENTS).to_arrow().select(["video_id", "moment_id"])
    ids: dict[str, set[str]] = {}
    for row in moments.to_pylist():
        ids.setdefault(row["video_id"], set()).add(row["moment_id"])
    return {v["video_id"]: (v["indexed_at"], v["run"]) for v in videos}, ids


def reindex_part(env: dict[str, str], folder: Path, library: Path) -> None:
    from vidtt.library import video_id
    from vidtt.testing import make_square_video

    videos = sorted(folder.iterdir())
    changed = videos[len(videos) // 2]
    before, moments_before = rows(library)
    size_before = disk(library)
    yellow = (230, 220, 40)
    made = changed.with_suffix(".new.mp4")  # then moved over the link: its own file now
    make_square_video(made, (2.0, 9.0), yellow, seconds=SECONDS, fps=FPS, size=SIZE)
    made.replace(changed)
    seconds, _, text = index(env, folder, library)
    after, moments_after = rows(library)
    line = f"1 indexed ({SECONDS // 2} moments), {len(videos) - 1} unchanged, 0 removed"
    assert line in text, text
    key = video_id(str(changed))
    moved = {v for v in before if before[v] != after.get(v)}
    touched = {v for v in moments_before if moments_before[v] != moments_after.get(v)}
    assert moved == {key} and touched == {key}, (moved, touched, key)
    assert after[key][0] > before[key][0]
    print(f"\n## 4. Re-indexing after one of {len(videos)} videos changed\n")
    print("| wall s | count line | rows changed | moments changed | library MiB before, after |")
    print("|---:|---|---:|---:|---|")
    mib = 1 << 20
    print(
        f"| {seconds:.1f} | {line} | {len(moved)} (the changed video's) | "
        f"{len(moments_before[key])} replaced, others identical "
        f"| {size_before / mib:.2f}, {disk(library) / mib:.2f} |",
        flush=True,
    )


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="vidtt-library-") as temporary:
        root = Path(temporary)
        search_part(args, root)
        env = plugin_env(root)
        clips = make_videos(root / "clips", max(args.index_videos, args.summarize_videos))
        throughput_part(args, root, env, clips)
        folder, library = memory_part(args, root, env, clips)
        reindex_part(env, folder, library)


if __name__ == "__main__":
    main()
