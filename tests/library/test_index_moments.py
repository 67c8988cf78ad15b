"""The moments indexing writes besides frames: shots (the scene sampler's, their vectors the
mean of their frames'), segment notes (the model's, as `vidtt summarize` makes them), and the
filters that choose among kinds, dates and durations."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_index_search import vidtt

from vidtt.library import Library, Video
from vidtt.library.indexing import IndexWork, Tools, index_one
from vidtt.testing import make_scenes_video, make_square_video
from vidtt.testing.embedders import ColourEmbedder

pytestmark = pytest.mark.slow
GREY, RED, BLUE = (128, 128, 128), (220, 30, 30), (30, 60, 220)
WHITE, BLACK = (245, 245, 245), (10, 10, 10)
SCENES = [(4.0, GREY, WHITE), (3.5, BLACK, RED), (4.5, WHITE, BLUE)]


def colour_tools(**work: Any) -> Tools:
    embedder = ColourEmbedder()
    return Tools(IndexWork(embedder="colour", **work), embedder, embedder.options())


def opened(folder: Path) -> Library:
    return Library.open(str(folder), dim=7, embedder="colour")


def text_vector(text: str) -> Any:
    embedder = ColourEmbedder()
    return embedder.embed_texts([text], embedder.options())[0]


def moments_of(library: Library, kind: str) -> list[dict[str, Any]]:
    rows = library._moments.search().where(f"kind = '{kind}'").to_list()
    return sorted(rows, key=lambda row: row["start"])


def test_shots_are_moments_with_their_frames_mean(tmp_path) -> None:
    video = make_scenes_video(tmp_path / "scenes.mp4", SCENES)
    library = opened(tmp_path / "lib")
    written = index_one(library, Video.from_path(video), colour_tools(shots=True))
    shots, frames = moments_of(library, "shot"), moments_of(library, "frame")
    assert written == len(shots) + len(frames) and len(frames) == 6
    assert [(s["start"], s["end"]) for s in shots] == [(0.0, 4.0), (4.0, 7.5), (7.5, 12.0)]
    red_shot = shots[1]  # the frames at 4 s (2 s of it) and 6 s (1.5 s of it), both red
    weighed = 2.0 * np.array(frames[2]["vector"]) + 1.5 * np.array(frames[3]["vector"])
    assert np.allclose(red_shot["vector"], weighed / np.linalg.norm(weighed), atol=1e-6)
    assert Path(red_shot["thumbnail"]).name == "000006000.jpg"  # the frame nearest 5.75 s
    [best, *_] = library.search("", text_vector("red"), kinds=["shot"])
    assert (best.kind, best.start, best.end) == ("shot", 4.0, 7.5)
    [blue, *_] = library.search("", text_vector("blue"), kinds=["shot"])
    assert (blue.start, blue.end) == (7.5, 12.0)


def test_no_shots_unless_asked(tmp_path) -> None:
    video = make_scenes_video(tmp_path / "scenes.mp4", SCENES)
    library = opened(tmp_path / "lib")
    index_one(library, Video.from_path(video), colour_tools())
    assert moments_of(library, "shot") == []


def test_notes_are_moments_found_by_their_words(tmp_path, llava_dir) -> None:
    from vidtt.config import PipelineConfig
    from vidtt.pipeline.notes import MemoryStore, timeline

    config = PipelineConfig(
        model=str(llava_dir),
        backend="cpu",
        dtype="float32",
        sampler_options={"num_frames": 2},
        generation={"max_new_tokens": 6},
        segment_options={"segment_seconds": 4, "min_segment": 2, "shots": False},
    )
    tools = colour_tools(notes=config)
    from vidtt.pipeline.core import Pipeline

    tools.pipe = Pipeline(config)
    tools.pipe.note_store = MemoryStore()
    video = make_square_video(tmp_path / "red.mp4", (4.0, 7.0), RED)
    library = opened(tmp_path / "lib")
    index_one(library, Video.from_path(video), tools)
    notes = moments_of(library, "note")
    made = timeline(tools.pipe, {"videos": [str(video)]})
    assert made.made == 0  # the same notes, found in the store indexing filled
    assert [(n["start"], n["end"], n["text"]) for n in notes] == [
        (n.start, n.end, n.note.strip()) for n in made.notes if n.note.strip()
    ]
    assert [(n["start"], n["end"]) for n in notes] == [(0.0, 4.0), (4.0, 8.0), (8.0, 12.0)]
    assert all(Path(n["thumbnail"]).is_file() for n in notes)
    word = max(notes[1]["text"].split(), key=len)
    hits = library.search(word, None, kinds=["note"])
    holding = {n["start"] for n in notes if word in n["text"]}
    assert hits[0].text_rank == 1 and hits[0].start in holding


def test_search_filters_from_the_command_line(env, tmp_path) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    old = make_square_video(videos / "old.mp4", (0.0, 3.0), RED, seconds=6)
    new = make_square_video(videos / "new.mp4", (0.0, 3.0), RED, seconds=12)
    os.utime(old, (1.6e9, 1.6e9))  # 2020-09-13
    os.utime(new, (1.8e9, 1.8e9))  # 2027-01-15
    indexed = vidtt(env, "index", str(videos), "--library", "mine", "--embedder", "colour")
    assert indexed.returncode == 0, indexed.stderr

    def names(*flags: str) -> set[str]:
        done = vidtt(env, "search", "red", "--library", "mine", "--json", *flags)
        assert done.returncode == 0, done.stderr
        return {Path(hit["path"]).name for hit in json.loads(done.stdout)}

    assert names() == {"old.mp4", "new.mp4"}
    assert names("--since", "2026-01-01") == {"new.mp4"}
    assert names("--until", "2026-01-01") == {"old.mp4"}
    assert names("--min-duration", "10") == {"new.mp4"}
    assert names("--max-duration", "10") == {"old.mp4"}
    assert names("--kind", "transcript") == set()
    bad = vidtt(env, "search", "red", "--library", "mine", "--since", "last tuesday")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "'last tuesday' is not a date: write 2026-12-01" in bad.stderr


def test_index_shots_and_notes_from_the_command_line(env, tmp_path, llava_dir) -> None:
    from tiny_models import job_config

    video = make_scenes_video(tmp_path / "scenes.mp4", SCENES)
    config = tmp_path / "pipe.json"
    small = {"segment_seconds": 4, "min_segment": 2, "shots": False, "note_tokens": 6}
    config.write_text(json.dumps(job_config(llava_dir, dtype="float32", segment_options=small)))
    env = {**env, "VIDTT_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    flags = ("--library", "mine", "--embedder", "colour", "--shots", "--notes")
    done = vidtt(env, "index", str(video), *flags, "--config", str(config))
    assert done.returncode == 0, done.stderr
    searched = vidtt(env, "search", "red", "--library", "mine", "--kind", "shot", "--json")
    assert [(h["start"], h["end"]) for h in json.loads(searched.stdout)][:1] == [(4.0, 7.5)]
    asked = vidtt(
        env, "ask", str(video), "-q", "What?", "--long", "--json", "--config", str(config)
    )
    assert asked.returncode == 0, asked.stderr
    segments = json.loads(asked.stdout)["segments"]
    assert segments and all(segment["cached"] for segment in segments)  # indexing made them
    for segment in segments:
        words = segment["note"].split()
        if words:
            found = vidtt(
                env, "search", max(words, key=len), "--library", "mine", "--kind", "note", "--json"
            )
            starts = [h["start"] for h in json.loads(found.stdout)]
            assert segment["start"] in starts


def test_model_flags_need_notes(env, tmp_path) -> None:
    video = make_square_video(tmp_path / "v.mp4", (1.0, 2.0), RED, seconds=3)
    done = vidtt(
        env, "index", str(video), "--library", "mine", "--model", "x", "--embedder", "colour"
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "--model is the model that writes notes: give it with --notes" in done.stderr


def test_indexing_otherwise_indexes_again(env, tmp_path) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    make_scenes_video(videos / "a.mp4", SCENES)
    make_square_video(videos / "b.mp4", (0.0, 3.0), RED, seconds=6)
    base = ("index", str(videos), "--library", "mine", "--embedder", "colour")
    assert "2 indexed" in vidtt(env, *base).stderr
    assert "0 indexed (0 moments), 2 unchanged" in vidtt(env, *base).stderr
    shots = vidtt(env, *base, "--shots")  # a new recipe: every video again, with its shots
    assert "2 indexed" in shots.stderr, shots.stderr
    assert "0 indexed (0 moments), 2 unchanged" in vidtt(env, *base, "--shots").stderr
    kinds = vidtt(env, "search", "red", "--library", "mine", "--kind", "shot", "--json")
    assert {h["kind"] for h in json.loads(kinds.stdout)} == {"shot"}
    assert "2 indexed" in vidtt(env, *base, "--every", "1", "--shots").stderr


def test_a_library_from_before_recipes_gains_them(tmp_path) -> None:
    video = make_square_video(tmp_path / "v.mp4", (0.0, 3.0), RED, seconds=4)
    library = opened(tmp_path / "lib")
    work = IndexWork(embedder="colour")
    index_one(library, Video.from_path(video), colour_tools())
    library._videos.drop_columns(["recipe"])  # as a library made before recipes
    again = opened(tmp_path / "lib")
    assert "recipe" in again._videos.schema.names
    plan = again.plan([Video.from_path(video)], recipe=work.recipe())
    assert [v.path for v in plan.changed] == [str(video.resolve())]  # indexed once more
    index_one(again, Video.from_path(video), colour_tools())
    assert again.plan([Video.from_path(video)], recipe=work.recipe()).unchanged


def test_index_a_url(env, tmp_path) -> None:
    import functools
    import http.server
    import threading

    served = tmp_path / "served"
    served.mkdir()
    make_square_video(served / "red.mp4", (4.0, 7.0), RED)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/red.mp4"
    listed = tmp_path / "list.jsonl"
    listed.write_text(json.dumps({"video": url}) + "\n")
    env = {**env, "VIDTT_LIMIT_BLOCK_PRIVATE_ADDRESSES": "0"}
    try:
        done = vidtt(env, "index", url, "--library", "mine", "--embedder", "colour")
        assert done.returncode == 0 and "1 indexed (6 moments)" in done.stderr, done.stderr
        again = vidtt(env, "index", str(listed), "--library", "mine", "--embedder", "colour")
        assert "0 indexed (0 moments), 1 unchanged" in again.stderr, again.stderr
    finally:
        server.shutdown()
    hits = json.loads(vidtt(env, "search", "red", "--library", "mine", "--json").stdout)
    assert [(h["path"], h["start"]) for h in hits] == [(url, 4.0), (url, 6.0)]
    assert all(Path(h["thumbnail"]).is_file() for h in hits)
    refused = vidtt(
        {k: v for k, v in env.items() if k != "VIDTT_LIMIT_BLOCK_PRIVATE_ADDRESSES"},
        "index", url.replace("red", "other"), "--library", "second", "--embedder", "colour",
    )  # fmt: skip
    assert refused.returncode == 1 and "private" in refused.stderr, refused.stderr
