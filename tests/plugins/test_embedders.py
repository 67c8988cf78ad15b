"""Embedders, a plugin family: found through entry points and the registry API, the built-in
`clip` on tiny CLIP and SigLIP checkpoints made on the spot, and `colour` (features computed from
the pixels) ranking generated frames by the colour a text names."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import vidtt
from vidtt.errors import BackendUnavailableError, ModelLoadError, RegistryError, UnknownNameError
from vidtt.plugins.registry import Registry
from vidtt.testing.embedders import PALETTE, ColourEmbedder

VIDTT = str(Path(sys.executable).with_name("vidtt"))


def _tiny(folder: Path, family: str) -> Path:
    import torch
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPProcessor,
        SiglipConfig,
        SiglipImageProcessor,
        SiglipModel,
        SiglipProcessor,
    )

    from vidtt.testing.models import train_tokenizer

    tok = train_tokenizer()
    text = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 2, "vocab_size": len(tok), "max_position_embeddings": 16,
            "pad_token_id": tok.pad_token_id, "eos_token_id": tok.eos_token_id}  # fmt: skip
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
              "num_attention_heads": 2, "image_size": 32, "patch_size": 8}  # fmt: skip
    torch.manual_seed(0)
    if family == "clip":
        model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16))
        images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size=32)
        processor = CLIPProcessor(image_processor=images, tokenizer=tok)
    else:
        model = SiglipModel(SiglipConfig(text_config=text, vision_config=vision))
        images = SiglipImageProcessor(size={"height": 32, "width": 32})
        processor = SiglipProcessor(image_processor=images, tokenizer=tok)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module", params=["clip", "siglip"])
def checkpoint(request, tmp_path_factory) -> Path:
    return _tiny(tmp_path_factory.mktemp(request.param), request.param)


def test_clip_embeds_frames_and_texts_as_unit_vectors(checkpoint) -> None:
    clip = vidtt.registry.embedder("clip")
    options = clip.options(model=str(checkpoint), batch_size=2)
    frames = np.random.default_rng(0).integers(0, 255, (5, 40, 56, 3), dtype=np.uint8)
    vectors = clip.embed_frames(frames, options)
    assert vectors.shape == (5, clip.dimension(options)) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    alone = clip.embed_frames(frames[3:4], clip.options(model=str(checkpoint), batch_size=1))
    assert np.allclose(alone[0], vectors[3], atol=1e-5)  # a batch changes nothing
    texts = clip.embed_texts(["a red car", "blue", "a dog on a mat"], options)
    assert texts.shape == (3, vectors.shape[1])
    assert np.allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    assert clip.signature(options) == f"clip:{checkpoint}@main"


def test_a_model_that_is_not_clip_or_missing_is_one_line(tmp_path, llava_dir) -> None:
    clip = vidtt.registry.embedder("clip")
    with pytest.raises(ModelLoadError, match="embeds no images and texts") as found:
        clip.embed_texts(["x"], clip.options(model=str(llava_dir)))
    assert "\n" not in str(found.value)
    with pytest.raises(ModelLoadError) as missing:
        clip.embed_texts(["x"], clip.options(model=str(tmp_path / "nothing")))
    assert "nothing" in str(missing.value) and "\n" not in str(missing.value)


def test_a_device_not_here_is_one_line_before_any_weight_is_read(checkpoint, monkeypatch) -> None:
    import torch

    clip = vidtt.registry.embedder("clip")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for device, said in [("cuda:0", "is not available here"), ("gpu9", "is not a device")]:
        with pytest.raises(BackendUnavailableError, match=said) as found:
            clip.embed_texts(["x"], clip.options(model=str(checkpoint), device=device))
        assert "-E device=cpu" in str(found.value) and "\n" not in str(found.value)


def _frame(colour: tuple[int, int, int] | None) -> np.ndarray:
    frame = np.full((64, 96, 3), 128, dtype=np.uint8)  # grey
    if colour is not None:
        frame[20:40, 30:60] = colour
    return frame


def test_colour_ranks_the_frames_showing_what_a_text_names() -> None:
    colour = ColourEmbedder()
    options = colour.options()
    frames = np.stack([_frame(None), _frame(PALETTE["red"]), _frame(PALETTE["blue"])])
    vectors = colour.embed_frames(frames, options)
    texts = colour.embed_texts(["a red square", "something BLUE", "a cat"], options)
    scores = texts @ vectors.T
    assert scores[0].argmax() == 1 and scores[1].argmax() == 2
    assert not texts[2].any() and not vectors[0].any()  # nothing named, nothing shown


def test_an_embedder_plugin_is_found_by_its_entry_point(plugin_dist) -> None:
    plugin_dist(
        "vidtt-colour", "vidtt_colour", "from vidtt.testing.embedders import register_embedders"
    )
    registry = Registry()
    assert isinstance(registry.embedder("colour"), ColourEmbedder)
    with pytest.raises(UnknownNameError, match="colour"):
        registry.embedder("color")
    with pytest.raises(RegistryError, match="embedder 'colour' is registered twice"):
        registry.register(ColourEmbedder)  # the registry API: a class, built once
    entry = registry.register(ColourEmbedder, override=True)
    assert entry.family == "embedders" and entry.plugin == "<api>"
    with pytest.raises(RegistryError, match="Transcriber or Embedder"):
        registry.register(object())


def test_vidtt_plugins_lists_the_embedders() -> None:
    done = subprocess.run([VIDTT, "plugins"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "embedders" in done.stdout and "clip" in done.stdout
