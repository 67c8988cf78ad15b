"""Omni checkpoints as published load their text-output thinker for video questions."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import vidtt
from vidtt import ModelLoadError
from vidtt.engine.loading import resolve_model_class

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def omni_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tiny_models import make_qwen25_omni

    return make_qwen25_omni(tmp_path_factory.mktemp("qwen2.5-omni"))


def test_published_qwen25_omni_answers_with_its_thinker(omni_dir: Path, videos) -> None:
    import json

    from safetensors.torch import load_file

    saved = json.loads((omni_dir / "config.json").read_text())
    assert saved["architectures"] == ["Qwen2_5OmniModel"] and saved["enable_audio_output"]
    pipe = vidtt.Pipeline(
        model=str(omni_dir),
        backend="cpu",
        dtype="float32",
        sampler_options={"num_frames": 4},
        generation={"max_new_tokens": 5},
    )
    assert type(pipe.model).__name__ == "Qwen2_5OmniThinkerForConditionalGeneration"
    stored = {
        k.removeprefix("thinker."): v for k, v in load_file(omni_dir / "model.safetensors").items()
    }
    loaded = pipe.model.state_dict()
    assert len(stored) == len(loaded)
    for key, value in loaded.items():  # the thinker's own weights, not fresh random ones
        candidates = [
            key,
            key.removeprefix("model."),
            key.replace("model.language_model.", "model."),
        ]
        assert any(k in stored and torch.equal(stored[k], value) for k in candidates), key
    answer = pipe.ask(videos["h264"], "What happens?")
    assert answer.formatter == "native-video" and answer.usage.generated_tokens == 5
    assert answer.usage.visual_tokens > 0


def test_qwen3_omni_resolves_to_its_thinker() -> None:
    from transformers import Qwen3OmniMoeConfig

    model_class, extra = resolve_model_class(Qwen3OmniMoeConfig())
    assert model_class.__name__ == "Qwen3OmniMoeThinkerForConditionalGeneration"
    assert extra["key_mapping"] == {r"^thinker\.": ""}
    assert type(extra["config"]).__name__ == "Qwen3OmniMoeThinkerConfig"


def test_unknown_architecture_is_a_clear_error() -> None:
    from transformers import BertConfig

    config = BertConfig(architectures=["NoSuchModel"])
    with pytest.raises(ModelLoadError, match="no video-to-text class for model type 'bert'"):
        resolve_model_class(config, "some/bert")
