"""`vidtt eval --judge MODEL`: open answers also scored by a local judge model, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from commands import console
from test_eval_command import _lines, _write_set
from tiny_models import job_config


def _yes_judge(folder: Path) -> Path:
    """A tiny causal LM whose saved generation config makes it answer "yes"."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from vidtt.testing.models import CHATML, save_model, tiny_text_config, train_tokenizer

    tok = train_tokenizer()
    tok.add_tokens(["yes"])
    tok.chat_template = CHATML
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(**tiny_text_config(len(tok), 512)))
    yes, end = tok.convert_tokens_to_ids("yes"), tok.convert_tokens_to_ids("<|im_end|>")
    model.generation_config.sequence_bias = [[[yes], 1e4], [[yes, end], 2e4]]
    save_model(model, tok, folder)
    tok.save_pretrained(folder)
    return folder


@pytest.mark.slow
def test_open_answers_are_judged(llava_dir, tmp_path) -> None:
    questions = _write_set(tmp_path)
    config = tmp_path / "pipe.json"
    config.write_text(json.dumps(job_config(llava_dir, dtype="float32")))
    judge = _yes_judge(tmp_path / "judge")
    out = tmp_path / "out"
    args = ["eval", str(questions), str(config), "--output", str(out), "--quiet"]
    done = console(*args, "--judge", str(judge), "--max-new-tokens", "2")
    assert done.returncode == 0, done.stderr
    predictions = {p["id"]: p for p in _lines(out / "predictions.jsonl")}
    assert predictions["o1"]["judged"] is True
    assert "judged" not in predictions["c1"]
    judged = json.loads((out / "scores.json").read_text())["open"]["judge"]
    assert judged["judge"] == str(judge) and judged["accuracy"]["value"] == 1.0
    assert "judged correct" in done.stdout


def test_a_judge_that_cannot_load_is_one_line_before_answering(tmp_path) -> None:
    questions = _write_set(tmp_path)
    out = tmp_path / "out"
    done = console("eval", str(questions), "--output", str(out), "--judge", str(tmp_path / "nope"))
    assert done.returncode != 0
    assert "judge model" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (out / "answers.jsonl").exists()
