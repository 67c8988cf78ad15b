"""`vidtt eval --sweep`: every setting answered by one loaded model, each in its folder, with
the frames each setting asked for, and a report over them; a bad sweep is refused up front."""

from __future__ import annotations

import json

import pytest
from commands import console, in_process
from test_eval_command import _lines, _write_set
from tiny_models import job_config

from vidtt.errors import OptionsError
from vidtt.eval.sweep import parse_sweep, request_fields, setting_folder, setting_name


@pytest.mark.slow
def test_a_sweep_answers_every_setting_with_one_model(llava_dir, tmp_path, monkeypatch) -> None:
    from vidtt.engine.core import Engine

    questions = _write_set(tmp_path)
    config = tmp_path / "pipe.json"
    config.write_text(json.dumps(job_config(llava_dir, dtype="float32")))
    loads = []
    load = Engine.load.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(
        Engine, "load", classmethod(lambda cls, *a, **k: loads.append(1) or load(cls, *a, **k))
    )
    out = tmp_path / "out"
    args = ["eval", str(questions), str(config), "--output", str(out), "--quiet"]
    sweep = ["--sweep", "frames=2,3", "timestamps=off,on", "--max-new-tokens", "2"]
    done = in_process(*args, *sweep)
    assert done.returncode == 0, done.stderr
    assert len(loads) == 1  # one model for the four settings
    folders = [
        "frames=2_timestamps=off",
        "frames=2_timestamps=on",
        "frames=3_timestamps=off",
        "frames=3_timestamps=on",
    ]
    for name in folders:
        frames = int(name[7])
        predictions = _lines(out / name / "predictions.jsonl")
        assert len(predictions) == 5
        assert all(len(p["frame_times"][0]) == frames for p in predictions), name
        assert all(p["peak_memory"] > 0 for p in predictions)
        request = _lines(out / name / "requests.jsonl")[0]
        assert request["sampler_options"] == {"num_frames": frames}
        assert request["timestamps"] is name.endswith("on")
    report = json.loads((out / "report.json").read_text())
    assert [p["name"] for p in report["points"]] == [n.replace("_", " ") for n in folders]
    assert report["metric"]["name"] == "accuracy"
    assert (out / "report.html").is_file() and (out / "score_vs_visual_tokens.png").is_file()
    tokens = {p["name"]: p["cost"]["visual_tokens"] for p in report["points"]}
    assert tokens["frames=3 timestamps=off"] > tokens["frames=2 timestamps=off"]
    assert "frames=3 timestamps=on" in done.stdout and "vs best" in done.stdout
    assert "20 answered, 0 failed, 0 already done" in done.stderr  # every setting counted

    again = in_process(*args, *sweep)
    assert again.returncode == 0, again.stderr
    assert len(loads) == 1  # everything answered: no model loaded
    assert "0 answered, 0 failed, 20 already done" in again.stderr


@pytest.mark.parametrize(
    ("sweep", "message"),
    [
        (["frame=2,4"], "--sweep cannot vary 'frame': did you mean 'frames'?"),
        (["frames=0,4"], "--sweep frames=0: sampler 'uniform': num_frames"),
        (["frames"], "--sweep 'frames': write KEY=VALUE1,VALUE2"),
        (["sampler=uniform,scen"], "unknown sampler 'scen'"),
        (["transcript=maybe"], "--sweep transcript=maybe: the request: transcript: should be"),
        (["frames=2", "frames=4"], "--sweep names 'frames' twice"),
    ],
)
def test_a_bad_sweep_is_one_line_before_any_model(tmp_path, sweep, message) -> None:
    questions = _write_set(tmp_path)
    done = console(
        "eval",
        str(questions),
        "--model",
        str(tmp_path / "no-model"),
        "--output",
        str(tmp_path / "out"),
        "--sweep",
        *sweep,
    )
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "out").exists()


def test_the_grid_its_names_and_request_fields() -> None:
    from vidtt.config import PipelineConfig

    grid = parse_sweep(["frames=8,16", "sampler=uniform,scene", "max_visual_tokens=none,512"])
    assert len(grid) == 8 and grid[1] == {
        "frames": 8,
        "sampler": "uniform",
        "max_visual_tokens": 512,
    }
    assert setting_name(grid[0]) == "frames=8 sampler=uniform max_visual_tokens=none"
    assert setting_folder({"sampler": "a/b c"}) == "sampler=a-b-c"
    registry = PipelineConfig().registry()
    scene = request_fields({"frames": 8, "sampler": "scene"}, registry, "uniform")
    assert scene == {"sampler": "scene", "sampler_options": {"max_frames": 8}}
    by_run = request_fields({"frames": 8}, registry, "interval")  # the run's sampler's option
    assert by_run == {"sampler_options": {"max_frames": 8}}
    with pytest.raises(OptionsError, match="sampler 'interval': max_frames"):
        request_fields({"frames": -1}, registry, "interval")
