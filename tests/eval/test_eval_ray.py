"""`vidtt eval --ray`: the set answered on a Ray cluster scores as it does here."""

from __future__ import annotations

import json

import pytest
from commands import in_process
from test_eval_command import _lines, _write_set
from tiny_models import job_config

pytestmark = [pytest.mark.slow, pytest.mark.ray]


def test_eval_on_ray_scores_what_eval_here_scores(cluster, llava_dir, tmp_path) -> None:
    questions = _write_set(tmp_path)
    config = tmp_path / "pipe.json"
    config.write_text(json.dumps(job_config(llava_dir, dtype="float32")))
    address = str(cluster.get_runtime_context().gcs_address)
    common = [str(questions), str(config), "--quiet", "--max-new-tokens", "3"]
    on_ray = in_process("eval", *common, "--output", str(tmp_path / "ray"), "--ray", address)
    assert on_ray.returncode == 0, on_ray.stderr[-3000:]
    assert "5 answered, 0 failed" in on_ray.stderr
    here = in_process("eval", *common, "--output", str(tmp_path / "here"))
    assert here.returncode == 0, here.stderr
    ray_lines = {p["id"]: p for p in _lines(tmp_path / "ray" / "predictions.jsonl")}
    for line in _lines(tmp_path / "here" / "predictions.jsonl"):
        assert ray_lines[line["id"]]["prediction"] == line["prediction"], line["id"]
        assert ray_lines[line["id"]]["frame_times"] == line["frame_times"]
    scores = [json.loads((tmp_path / d / "scores.json").read_text()) for d in ("ray", "here")]
    assert scores[0] == scores[1]
    again = in_process("eval", *common, "--output", str(tmp_path / "ray"), "--ray", address)
    assert "0 answered, 0 failed, 5 already done" in again.stderr
