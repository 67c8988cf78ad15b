"""Model-aware sampling defaults: the model's video processor decides the frames unless the
user did; the Answer says which rule chose them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

import vidtt
from vidtt.settings.frame_rule import sampling_defaults, sampling_defaults_for_model

UNIFORM = {"num_frames", "rule", "start", "end", "size", "max_side"}
INTERVAL = {"fps", "every", "min_frames", "max_frames", "start", "end"}
SAMPLERS = {"uniform", "interval", "keyframe"}


def processor(**settings):
    return SimpleNamespace(**settings)


def test_rate_defaults_switch_an_unchosen_sampler_to_interval() -> None:
    qwen3 = processor(fps=2, min_frames=4, max_frames=768)
    rule = sampling_defaults(qwen3, "uniform", UNIFORM, {}, sampler_chosen=False, samplers=SAMPLERS)
    assert rule.sampler == "interval"
    assert rule.options == {"fps": 2.0, "max_frames": 768, "min_frames": 4}
    assert (
        rule.rule
        == "the model's SimpleNamespace: fps=2, max_frames=768, min_frames=4 (interval sampler)"
    )


def test_a_chosen_count_sampler_keeps_vidtts_default_and_says_why() -> None:
    qwen3 = processor(fps=2, min_frames=4, max_frames=768)
    rule = sampling_defaults(qwen3, "uniform", UNIFORM, {}, sampler_chosen=True, samplers=SAMPLERS)
    assert rule.sampler == "uniform" and rule.options == {}
    assert rule.rule.startswith("vidtt's default") and "'uniform' cannot follow" in rule.rule


def test_count_defaults_and_caps() -> None:
    gemma4 = processor(num_frames=32)
    assert sampling_defaults(gemma4, "uniform", UNIFORM).options == {"num_frames": 32}
    assert sampling_defaults(gemma4, "keyframe", {"max_frames"}).options == {"max_frames": 32}
    glm4v = processor(fps=2, num_frames=16)  # the count caps the rate
    rule = sampling_defaults(glm4v, "interval", INTERVAL)
    assert rule.options == {"fps": 2.0, "max_frames": 16}


def test_user_settings_win_and_no_video_processor_keeps_vidtts_default() -> None:
    qwen3 = processor(fps=2, min_frames=4, max_frames=768)
    rule = sampling_defaults(qwen3, "uniform", UNIFORM, {"num_frames": 6}, False, SAMPLERS)
    assert rule.options == {} and rule.rule == "your settings (num_frames=6)"
    assert sampling_defaults(None, "uniform", UNIFORM).rule == (
        "vidtt's default (the model has no video processor)"
    )
    qwen2 = processor(min_frames=4, max_frames=768)  # no rate, no count
    assert "sets no frame rate or count" not in sampling_defaults(qwen2, "uniform", UNIFORM).rule


@pytest.fixture(scope="module")
def qwen_at_2fps(qwen_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("qwen-2fps") / "model"
    shutil.copytree(qwen_dir, folder)
    config = folder / "processor_config.json"  # transformers 5 keeps the parts in one file
    settings = json.loads(config.read_text())
    settings["video_processor"].update(fps=2.0, min_frames=2, max_frames=3)
    config.write_text(json.dumps(settings))
    return folder


def test_pipeline_follows_the_models_rate_and_records_the_rule(qwen_at_2fps: Path, videos) -> None:
    pipe = vidtt.Pipeline(model=str(qwen_at_2fps), backend="cpu", generation={"max_new_tokens": 2})
    assert pipe.sampler.name == "interval"
    [used] = pipe.ask(videos["h264"], "What?").videos  # 2 s at 2 fps, capped at 3 frames
    assert len(used.indices) == 3 and used.sampler == "interval"
    assert used.rule.startswith("the model's Qwen2VLVideoProcessor: fps=2, max_frames=3")
    mine = vidtt.Pipeline(
        model=str(qwen_at_2fps),
        backend="cpu",
        sampler_options={"num_frames": 2},
        generation={"max_new_tokens": 2},
    )
    [used] = mine.ask(videos["h264"], "What?").videos
    assert len(used.indices) == 2 and used.rule == "your settings (num_frames=2)"
    clip = vidtt.sample(videos["h264"], num_frames=2)
    assert mine.ask(clip, "What?").videos[0].rule == "a Clip sampled by the caller"


def test_defaults_for_a_model_folder_read_no_weights(qwen_at_2fps: Path) -> None:
    rule = sampling_defaults_for_model(str(qwen_at_2fps))
    assert rule.sampler == "interval" and rule.options["fps"] == 2.0
    assert sampling_defaults_for_model(str(qwen_at_2fps), sampler_chosen=True).options == {}


def test_sample_command_says_which_rule_chose_the_frames(qwen_at_2fps: Path, videos) -> None:
    import subprocess
    import sys

    command = [str(Path(sys.executable).parent / "vidtt"), "sample", str(videos["h264"])]
    done = subprocess.run(
        [*command, "--model", str(qwen_at_2fps), "--json"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["sampler"] == "interval" and len(report["frames"]) == 3
    assert report["rule"].startswith("the model's Qwen2VLVideoProcessor: fps=2")
    done = subprocess.run(
        [*command, "--model", str(qwen_at_2fps), "--frames", "2"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "frames chosen by: your settings (num_frames=2)" in done.stdout
