"""The visual-token budget through every entry point: Python, config file, CLI, `vidtt run`."""

from __future__ import annotations

import json

import pytest
from commands import console, in_process

import vidtt
from vidtt.errors import OptionsError

PER_FRAME = 16  # the tiny llava: 32 px images in 8 px patches


@pytest.fixture(scope="module")
def budgeted(llava_dir):
    return vidtt.Pipeline(
        model=str(llava_dir),
        backend="cpu",
        max_visual_tokens=100,
        generation={"max_new_tokens": 2},
    )


def test_python_budget_fills_and_records_the_plan(budgeted, videos) -> None:
    answer = budgeted.ask(videos["h264"], "What?")
    used = answer.videos[0]
    assert len(used.indices) == 100 // PER_FRAME == 6
    assert answer.usage.visual_tokens == 96 <= 100
    assert used.budget["num_frames"] == 6 and used.budget["tokens_per_frame"] == PER_FRAME
    assert used.rule.startswith("the visual-token budget: 6 frames")


def test_requests_bring_their_own_budget_and_counts(budgeted, videos) -> None:
    two = {"videos": [videos["h264"], videos["vp9"]], "question": "Same?"}
    small, shared, counted = budgeted.batch(
        [
            {"videos": [videos["h264"]], "question": "Q?", "max_visual_tokens": 40},
            two,
            {"videos": [videos["h264"]], "question": "Q?", "num_frames": 3},
        ]
    )
    assert len(small.videos[0].indices) == 2 and small.usage.visual_tokens == 32
    assert [len(v.indices) for v in shared.videos] == [3, 3]  # two videos share 100 tokens
    assert shared.usage.visual_tokens <= 100
    assert len(counted.videos[0].indices) == 3  # an explicit count that fits wins
    with pytest.raises(OptionsError, match="the most frames that fit is 6"):
        budgeted.batch([{"videos": [videos["h264"]], "question": "Q?", "num_frames": 10}])


def test_fit_context_leaves_room_for_the_answer(tmp_path, videos) -> None:
    from vidtt.testing.models import make_tiny_llava

    folder = make_tiny_llava(tmp_path / "short", context=128)
    pipe = vidtt.Pipeline(
        model=str(folder), backend="cpu", fit="context", generation={"max_new_tokens": 20}
    )
    answer = pipe.ask(videos["h264"], "What?")
    frames = len(answer.videos[0].indices)
    assert answer.usage.prompt_tokens + 20 <= 128
    assert answer.usage.prompt_tokens + PER_FRAME + 20 > 128  # one frame more would not fit
    assert frames == answer.videos[0].budget["num_frames"] >= 1


def test_config_file_and_run_requests(llava_dir, videos, tmp_path) -> None:
    config = tmp_path / "pipe.yaml"
    config.write_text(
        f"model: {llava_dir}\nbackend: cpu\nmax_visual_tokens: 64\ngeneration:\n"
        "  max_new_tokens: 2\n"
    )
    requests = tmp_path / "in.jsonl"
    lines = [
        {"id": "config", "videos": [str(videos["h264"])], "question": "Q?"},
        {"id": "own", "videos": [str(videos["h264"])], "question": "Q?", "max_visual_tokens": 32},
        {"id": "bad", "videos": [str(videos["h264"])], "question": "Q?", "max_visual_tokens": 0},
    ]
    requests.write_text("".join(json.dumps(x) + "\n" for x in lines))
    out = console(
        "run", str(config), "--input", str(requests), "--output", str(tmp_path / "o.jsonl")
    )
    records = {
        r["id"]: r for r in map(json.loads, (tmp_path / "o.jsonl").read_text().split("\n")[:-1])
    }
    assert len(records["config"]["videos"][0]["indices"]) == 4, out.stderr
    assert len(records["own"]["videos"][0]["indices"]) == 2
    assert "max_visual_tokens" in records["bad"]["error"]


def test_cli_ask_and_sample_explain(llava_dir, videos, tmp_path) -> None:
    ask = console(
        "ask",
        str(videos["h264"]),
        "-q",
        "What?",
        "--model",
        str(llava_dir),
        "--max-visual-tokens",
        "50",
        "--max-new-tokens",
        "2",
        "--json",
    )
    assert ask.returncode == 0, ask.stderr
    assert len(json.loads(ask.stdout)["videos"][0]["indices"]) == 3

    explain = console(
        "sample",
        str(videos["h264"]),
        "--model",
        str(llava_dir),
        "--explain",
        "--max-visual-tokens",
        "50",
        cwd=tmp_path,
    )
    assert explain.returncode == 0, explain.stderr
    assert "frames chosen by: 3 frames at 32x32 use 48 of 50 visual tokens" in explain.stdout
    assert "contact sheet: h264-frames.png" in explain.stdout
    assert (tmp_path / "h264-frames.png").stat().st_size > 0
    plain = in_process(
        "sample",
        str(videos["h264"]),
        "--model",
        str(llava_dir),
        "--explain",
        "--frames",
        "2",
        "--json",
        "--sheet",
        str(tmp_path / "s.png"),
    )
    plan = json.loads(plain.stdout)["plan"]
    assert plan["budget"] is None and plan["visual_tokens"] == 2 * PER_FRAME
    too_many = in_process(
        "sample",
        str(videos["h264"]),
        "--model",
        str(llava_dir),
        "--explain",
        "--max-visual-tokens",
        "50",
        "--frames",
        "5",
    )
    assert too_many.returncode == 2 and "the most frames that fit is 3" in too_many.stderr
    no_model = in_process("sample", str(videos["h264"]), "--explain")
    assert no_model.returncode == 2 and "--explain: name the model with --model" in no_model.stderr
