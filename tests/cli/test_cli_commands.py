"""The `vidtt` commands end to end, through the installed console script."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from commands import console, in_process
from PIL import Image
from tiny_models import job_config

from vidtt.media.sheet import LABEL_HEIGHT

QUESTION = "What is happening in this video?"


def model_args(folder: Path) -> list[str]:
    return ["--model", str(folder), "--frames", "4", "--max-new-tokens", "8"]


def test_ask_plain_stream_and_json(llava_dir, videos) -> None:
    plain = console("ask", str(videos["h264"]), "-q", QUESTION, *model_args(llava_dir))
    assert plain.returncode == 0, plain.stderr
    stream = in_process(
        "ask", str(videos["h264"]), "-q", QUESTION, "--stream", *model_args(llava_dir)
    )
    assert stream.returncode == 0 and stream.stdout == plain.stdout
    data = json.loads(
        in_process(
            "ask",
            str(videos["h264"]),
            str(videos["vp9"]),
            "-q",
            QUESTION,
            "--json",
            *model_args(llava_dir),
        ).stdout
    )
    assert data["usage"]["generated_tokens"] == 8 and data["usage"]["visual_tokens"] == 128
    assert set(data["timings"]) >= {"sampling", "preprocessing", "prefill", "decode"}
    assert [len(v["timestamps"]) for v in data["videos"]] == [4, 4]


def test_ask_with_a_config_file(llava_dir, videos, tmp_path) -> None:
    config = tmp_path / "pipe.yaml"
    config.write_text(
        f"model: {llava_dir}\nsampler: interval\n"
        "sampler_options: {every: 0.5}\ngeneration: {max_new_tokens: 4}\n"
    )
    out = console("ask", str(videos["h264"]), "-q", QUESTION, "--config", str(config), "--json")
    data = json.loads(out.stdout)
    assert data["videos"][0]["timestamps"] == [0.0, 0.5, 1.0, 1.5]
    assert data["usage"]["generated_tokens"] == 4


def test_sample_out_sheet_and_json(videos, tmp_path) -> None:
    out = console(
        "sample",
        str(videos["h264_gop"]),
        "--frames",
        "5",
        "--out",
        str(tmp_path / "frames"),
        "--sheet",
        str(tmp_path / "sheet.png"),
        "--json",
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["video"]["frame_count"] == 72 and data["video"]["codec"] == "h264"
    assert [f["index"] for f in data["frames"]] == [7, 21, 36, 50, 64]
    names = sorted(p.name for p in (tmp_path / "frames").iterdir())
    assert names[0] == "frame-000007-000000.292s.png" and len(names) == 5
    sheet = Image.open(tmp_path / "sheet.png")
    # 5 frames: 3 columns, 2 rows of cells the frames' shape (160x120 fit in 240) under labels
    assert sheet.size == (3 * 240, 2 * (180 + LABEL_HEIGHT))
    assert sheet.getpixel((3 * 240 - 5, 2 * (180 + LABEL_HEIGHT) - 5)) == (0, 0, 0)  # empty cell


def test_sample_interval_table(videos) -> None:
    out = console("sample", str(videos["h264"]), "--every", "0.5")
    assert out.returncode == 0
    assert "interval took 4 frames" in out.stdout and "1.500 s" in out.stdout


def test_run_resumes_and_records_bad_lines(llava_dir, videos, tmp_path) -> None:
    config = tmp_path / "pipe.json"
    config.write_text(json.dumps(job_config(llava_dir)))
    requests = tmp_path / "requests.jsonl"
    lines = [
        {"id": "a", "videos": [str(videos["h264"])], "question": QUESTION},
        {"id": "b", "videos": [str(tmp_path / "missing.mp4")], "question": QUESTION},
    ]
    requests.write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    answers = tmp_path / "answers.jsonl"
    first = console("run", str(config), "--input", str(requests), "--output", str(answers))
    assert first.returncode == 1  # some requests failed
    assert "1 request line(s) are invalid" in first.stderr and "not JSON" in first.stderr
    records = [json.loads(line) for line in answers.read_text().splitlines()]
    assert [r["id"] for r in records] == ["a", "b", 3]
    assert records[0]["usage"]["generated_tokens"] == 4 and "error" not in records[0]
    assert "video not found" in records[1]["error"] and "not JSON" in records[2]["error"]
    assert "1 answered, 2 failed" in first.stderr

    more = {"id": "c", "videos": [str(videos["vp9"])], "question": QUESTION}
    requests.write_text(requests.read_text() + json.dumps(more) + "\n")
    second = in_process("run", str(config), "--input", str(requests), "--output", str(answers))
    records = [json.loads(line) for line in answers.read_text().splitlines()]
    assert [r["id"] for r in records] == ["a", "b", 3, "c"]  # one record per id, input order
    assert "error" not in records[3] and "1 already done" in second.stderr


def test_chat_through_stdin(llava_dir, videos) -> None:
    out = console(
        "chat",
        str(videos["h264"]),
        *model_args(llava_dir),
        stdin="What is happening?\nAnd then?\n",  # an empty line would end the chat
    )
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.splitlines()) >= 2


USER_ERRORS = [
    (
        ["ask", "missing.mp4", "-q", "hi", "--model", "{model}"],
        "video 1 (missing.mp4): video not",
    ),
    (
        ["ask", "{video}", "-q", "hi", "--model", "{model}", "--sampler", "fancy"],
        "unknown sampler 'fancy'",
    ),
    (
        ["ask", "{video}", "-q", "hi", "--model", "{model}", "--backend", "cuda"],
        "backend 'cuda' is unavailable",
    ),
    (["ask", "{video}", "-q", " ", "--model", "{model}"], "question is empty"),
    (["ask", "{video}", "-q", "hi", "--model", "/no/such/model"], "does not exist"),
    (["ask", "{video}", "-q", "hi", "--config", "/no/such.yaml"], "config file /no/such.yaml"),
    (["ask", "{video}", "-q", "hi", "--model", "{model}", "--frames", "0"], "num_frames"),
    (["sample", "{video}", "--frames", "500"], "asked for 500 frames"),
    (["sample", "{video}", "--sheet", "{tmp}/sheet.txt"], "use a .png"),
    (["run", "{tmp}/none.yaml", "--input", "x", "--output", "y"], "does not exist"),
]


FIRST_OF_EACH = {args[0]: args for args, _ in reversed(USER_ERRORS)}  # command: its first case


@pytest.mark.parametrize("args,message", USER_ERRORS)
def test_user_errors_are_one_line(args, message, llava_dir, videos, tmp_path) -> None:
    # each command's first case through the console script, the others in this process
    run = console if FIRST_OF_EACH[args[0]] == args else in_process
    args = [a.format(model=llava_dir, video=videos["h264"], tmp=tmp_path) for a in args]
    out = run(*args)
    assert out.returncode == 2
    assert out.stderr.startswith("vidtt: error: ") and message in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_debug_shows_the_traceback(videos) -> None:
    out = console("--debug", "sample", str(videos["h264"]), "--frames", "500")
    assert out.returncode != 0 and "Traceback" in out.stderr
