"""A sweep's report from hand-made settings (no model): JSON, plots, HTML and the text table."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from vidtt.errors import OptionsError
from vidtt.eval.intervals import bootstrap_ci
from vidtt.eval.report import report_lines, write_report

MIB = 2**20


def _share(values: list[float]) -> dict[str, Any]:
    ci = list(bootstrap_ci(values))
    return {"value": sum(values) / len(values), "ci": ci, "count": len(values)}


def choice_point(name: str, outcomes: dict[str, float], **cost: Any) -> dict[str, Any]:
    """A setting with multiple-choice scores made from `outcomes` (1.0 right, 0.0 wrong)."""
    values = list(outcomes.values())
    scores = {"choice": {"accuracy": _share(values), "no_answer": 1, "groups": {}}}
    costs = {"visual_tokens": 1000.0, "seconds": 1.5, "peak_memory_bytes": 4096 * MIB}
    costs.update(cost)
    return {
        "name": name,
        "setting": {"frames": 8},
        "folder": name.replace(" ", "_"),
        "scores": scores,
        "cost": {**costs, "questions": len(values), "wall_seconds": None},
        "outcomes": outcomes,
    }


def right(n: int, wrong: int = 0, prefix: str = "q") -> dict[str, float]:
    """`n` questions `prefix0`..., the first `wrong` of them wrong."""
    return {f"{prefix}{i}": 0.0 if i < wrong else 1.0 for i in range(n)}


def read_json(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "report.json").read_text(encoding="utf-8"))


def test_files_are_written_and_the_page_embeds_the_plots(tmp_path: Path) -> None:
    from PIL import Image

    points = [choice_point("frames=8", right(40, 20)), choice_point("frames=16", right(40))]
    paths = write_report(tmp_path, points, title="Sweep of frames")
    names = sorted(path.name for path in paths)
    assert names == [
        "report.html",
        "report.json",
        "score_vs_peak_memory.png",
        "score_vs_seconds.png",
        "score_vs_visual_tokens.png",
    ]
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    for path in paths:
        assert path.exists() and path.stat().st_size > 0
        if path.suffix == ".png":
            with Image.open(path) as image:
                assert image.format == "PNG" and image.width > 0 and image.height > 0
            assert base64.b64encode(path.read_bytes()).decode() in page
    assert "<h1>Sweep of frames</h1>" in page
    assert 'href="frames%3D8/scores.json"' in page  # each setting's scores, linked
    assert 'src="http' not in page and "<script" not in page  # nothing outside the page


@pytest.mark.parametrize(
    ("scores", "kind", "metric", "value"),
    [
        (
            {"choice": {"accuracy": _share([1.0, 0.0]), "no_answer": 0, "groups": {}}},
            "choice",
            "accuracy",
            0.5,
        ),
        (
            {
                "grounding": {
                    "miou": 0.42,
                    "miou_ci": [0.3, 0.5],
                    "r@0.3": 0.6,
                    "r@0.5": 0.4,
                    "r@0.7": 0.2,
                    "count": 2,
                    "no_answer": 1,
                }
            },
            "grounding",
            "mIoU",
            0.42,
        ),
        (
            {
                "open": {
                    "exact": _share([0.0, 1.0, 1.0, 1.0]),
                    "contains": _share([1.0]),
                    "no_answer": 0,
                }
            },
            "open",
            "exact match",
            0.75,
        ),
    ],
)
def test_the_headline_is_named_by_kind(
    tmp_path: Path, scores: dict, kind: str, metric: str, value: float
) -> None:
    point = {"name": "one", "folder": "one", "scores": scores, "cost": {}, "outcomes": {}}
    write_report(tmp_path, [point])
    report = read_json(tmp_path)
    assert report["metric"] == {"kind": kind, "name": metric}
    assert report["points"][0]["score"]["value"] == pytest.approx(value)
    assert report["points"][0]["scores_path"] == "one/scores.json"


def test_choice_heads_a_set_that_also_has_grounding(tmp_path: Path) -> None:
    point = choice_point("mixed", right(4, 1))
    point["scores"]["grounding"] = {"miou": 0.9, "miou_ci": None, "count": 1, "no_answer": 0}
    write_report(tmp_path, [point])
    assert read_json(tmp_path)["metric"]["name"] == "accuracy"


def test_paired_difference_is_over_common_questions(tmp_path: Path) -> None:
    best = choice_point("best", right(40))
    # worse: the first 10 of the 30 shared questions wrong, plus 10 right ones best never saw
    worse = choice_point("worse", {**right(30, 10), **right(10, prefix="extra")})
    close = choice_point("close", right(40, 1))
    write_report(tmp_path, [worse, best, close])
    report = read_json(tmp_path)
    assert report["best"]["name"] == "best" and "highest headline score" in report["best"]["means"]
    by_name = {row["name"]: row["comparison"] for row in report["points"]}
    assert by_name["best"]["is_best"] and by_name["best"]["difference"] == 0.0
    assert by_name["worse"]["common"] == 30
    assert by_name["worse"]["difference"] == pytest.approx(-10 / 30)  # not -10/40 + extras
    low, high = by_name["worse"]["ci"]
    assert low < -10 / 30 < high < 0 and by_name["worse"]["excludes_zero"] is True
    assert by_name["close"]["difference"] == pytest.approx(-1 / 40)
    assert by_name["close"]["ci"][1] >= 0 and by_name["close"]["excludes_zero"] is False


def test_a_tie_goes_to_the_first_setting(tmp_path: Path) -> None:
    write_report(tmp_path, [choice_point("a", right(4, 1)), choice_point("b", right(4, 1))])
    assert read_json(tmp_path)["best"]["name"] == "a"


def test_names_are_escaped_in_the_page(tmp_path: Path) -> None:
    name = '<script>alert("x")</script> $x_1$'
    point = choice_point(name, right(5, 1))
    point["folder"] = 'a"><script>b'
    write_report(tmp_path, [point], title="<script>t</script>")
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<script" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert read_json(tmp_path)["points"][0]["name"] == name


def test_a_setting_without_a_cost_is_left_out_of_that_plot(tmp_path: Path) -> None:
    points = [
        choice_point("timed", right(10, 2)),
        choice_point("untimed", right(10, 5), seconds=None),
    ]
    for point in points:
        point["cost"]["peak_memory_bytes"] = None
    paths = write_report(tmp_path, points)
    plots = {plot["x"]: plot for plot in read_json(tmp_path)["plots"]}
    assert set(plots) == {"visual_tokens", "seconds"}
    assert not (tmp_path / "score_vs_peak_memory.png").exists()
    assert tmp_path / "score_vs_peak_memory.png" not in paths
    assert plots["seconds"]["shown"] == ["timed"] and plots["seconds"]["left_out"] == ["untimed"]
    assert plots["visual_tokens"]["shown"] == ["timed", "untimed"]


def test_one_setting_alone(tmp_path: Path) -> None:
    write_report(tmp_path, [choice_point("only", right(3, 1))])
    report = read_json(tmp_path)
    comparison = report["points"][0]["comparison"]
    assert report["best"]["name"] == "only" and comparison["is_best"]
    assert comparison["ci"] is None and len(report["plots"]) == 3
    with pytest.raises(OptionsError, match="at least one setting"):
        write_report(tmp_path, [])


def test_without_matplotlib_json_and_page_are_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    paths = write_report(tmp_path, [choice_point("a", right(4)), choice_point("b", right(4, 2))])
    assert sorted(path.name for path in paths) == ["report.html", "report.json"]
    assert not list(tmp_path.glob("*.png"))
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'pip install "vidtt[eval]"' in err[0]
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "No plots" in page and "pip install &quot;vidtt[eval]&quot;" in page
    report = read_json(tmp_path)
    assert report["plots"] == [] and "matplotlib" in report["no_plots"]


def test_report_lines_hold_the_table() -> None:
    lines = report_lines([choice_point("eight", right(40, 20)), choice_point("sixteen", right(40))])
    assert lines[0].split()[:2] == ["setting", "score"]
    eight = next(line for line in lines if line.startswith("eight"))
    sixteen = next(line for line in lines if line.startswith("sixteen"))
    assert "50.0" in eight and "-50.0" in eight and eight.endswith("yes")
    assert "100.0" in sixteen and "best" in sixteen
    assert "4096" in eight and "1000" in eight and "1.50" in eight
    assert any(line.startswith("best: sixteen") for line in lines)
