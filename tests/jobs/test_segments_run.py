"""Segment requests in `vidtt run --ray`: the sampling actor (no weights) checks a segments
request and defers it; the generation actor makes its notes (in the on-disk store) and answers
it with the other requests. The actors are called here directly, then on a local Ray cluster
(marked `slow` and `ray`)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest
from tiny_models import job_config

from vidtt.jobs import ray as ray_run
from vidtt.jobs.ray_actors import Deferred, GenerateActor, SampleActor
from vidtt.media.store import Store
from vidtt.pipeline.request import parse_request
from vidtt.testing import make_video

SMALL = {"min_segment": 2, "max_segments": 6, "shots": False, "note_tokens": 4}


@pytest.fixture(scope="module")
def clip12(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("long") / "twelve.mp4", frames=120, fps=10)


def lines(clip: Path, other: Path) -> list[dict[str, Any]]:
    return [
        {
            "id": "long",
            "video": str(clip),
            "question": "What happens?",
            "strategy": "segments",
            "segment_options": SMALL,
        },
        {"id": "short", "video": str(other), "question": "What happens?"},
        {
            "id": "bad",
            "videos": [str(clip), str(other)],
            "question": "What?",
            "strategy": "segments",
        },
    ]


def answered(table: Any) -> dict[Any, dict[str, Any]]:
    return {r["id"]: r for r in map(json.loads, table.column("record").to_pylist())}


def notes_kept(folder: Path) -> int:
    return Store(folder).usage().get("notes", (0, 0))[0]


def test_actors_defer_segment_requests_to_the_model(
    llava_dir: Path, clip12: Path, videos: dict[str, Path], tmp_path: Path
) -> None:
    pa = pytest.importorskip("pyarrow")
    settings = job_config(llava_dir, dtype="float32")
    requests = [
        parse_request({k: v for k, v in x.items() if k != "id"})
        for x in lines(clip12, videos["h264"])
    ]
    rows = pa.table(
        {
            "key": list(range(3)),
            "id": ['"long"', '"short"', '"bad"'],
            "request": [r.model_dump_json() for r in requests],
        }
    )
    sampled = SampleActor(settings, False)(rows)
    errors = sampled.column("error").to_pylist()
    assert errors[:2] == ["", ""] and "strategy segments takes one video, not 2" in errors[2]
    deferred = pickle.loads(sampled.column("prepared")[0].as_py())
    assert isinstance(deferred, Deferred) and not deferred.timestamps
    assert not isinstance(pickle.loads(sampled.column("prepared")[1].as_py()), Deferred)

    store = tmp_path / "cache"
    actor = GenerateActor(settings, gpu=False, env={"VIDTT_CACHE_DIR": str(store)})
    got = answered(actor(sampled))
    assert got["long"]["strategy"] == "segments" and len(got["long"]["segments"]) == 6
    assert not any(n["cached"] for n in got["long"]["segments"])
    assert got["short"]["strategy"] == "direct" and got["short"]["token_ids"]
    assert "takes one video" in got["bad"]["error"]
    assert notes_kept(store) == 6
    again = answered(actor(sampled))["long"]
    assert all(n["cached"] for n in again["segments"])  # found in the store, not made again


@pytest.mark.slow
@pytest.mark.ray
def test_run_on_ray_answers_segment_and_direct_requests(
    cluster: Any,
    llava_dir: Path,
    clip12: Path,
    videos: dict[str, Path],
    tmp_path: Path,
    cache_dir: Path,
) -> None:
    store = cache_dir
    config = job_config(llava_dir, dtype="float32")
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(x) + "\n" for x in lines(clip12, videos["h264"])[:2]))
    out = tmp_path / "out.jsonl"
    summary = ray_run.run(config, source, out, batch_size=4, progress=False)
    assert (summary.answered, summary.failed) == (2, 0)
    got = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert got["long"]["strategy"] == "segments" and len(got["long"]["segments"]) == 6
    assert [round(n["start"]) for n in got["long"]["segments"]] == [0, 2, 4, 6, 8, 10]
    assert all(n["note"] is not None and n["frames"] for n in got["long"]["segments"])
    assert got["short"]["strategy"] == "direct" and got["short"]["segments"] == []
    assert notes_kept(store) == 6  # made by the generation actor, in the driver's store
