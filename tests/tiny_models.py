"""Tiny random-weight video-language models, built offline and saved with save_pretrained.

The llava-interleave-like model is the one `vidtt demo` uses; this adds a native-video
`LlavaNextVideoForConditionalGeneration` with the same tokenizer and template.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidtt.testing.models import (
    CHATML,
    TINY_VISION,
    make_tiny_llava,
    save_model,
    tiny_text_config,
    train_tokenizer,
)

# The Qwen2.5-VL vision tower (also the Qwen2.5-Omni thinker's), as small as it runs.
QWEN25_VISION = {
    "depth": 1,
    "hidden_size": 32,
    "intermediate_size": 48,
    "num_heads": 2,
    "patch_size": 8,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "out_hidden_size": 32,
    "window_size": 32,
    "fullatt_block_indexes": [0],
}

make_llava = make_tiny_llava


def job_config(model: Path, **extra: Any) -> dict[str, Any]:
    """A small pipeline config for job tests: the tiny model on the CPU, 2 frames, 4 tokens."""
    return {
        "model": str(model),
        "backend": "cpu",
        "sampler_options": {"num_frames": 2},
        "generation": {"max_new_tokens": 4},
        **extra,
    }


def make_llava_next_video(folder: Path, context: int = 1024, seed: int = 0) -> Path:
    """A native-video model: each frame is 4 tokens after 2x2 pooling."""
    import torch
    from transformers import (
        CLIPVisionConfig,
        LlavaNextImageProcessor,
        LlavaNextVideoConfig,
        LlavaNextVideoForConditionalGeneration,
        LlavaNextVideoProcessor,
    )
    from transformers.models.llava_next_video.video_processing_llava_next_video import (
        LlavaNextVideoVideoProcessor,
    )

    tok = train_tokenizer()
    vision = CLIPVisionConfig(**TINY_VISION, projection_dim=32)
    config = LlavaNextVideoConfig(
        vision_config=vision.to_dict(),
        text_config=tiny_text_config(len(tok), context),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        video_token_index=tok.convert_tokens_to_ids("<video>"),
        image_grid_pinpoints=[[32, 32]],
        spatial_pool_stride=2,
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    torch.manual_seed(seed)
    model = LlavaNextVideoForConditionalGeneration(config)
    square = {"size": {"shortest_edge": 32}, "crop_size": {"height": 32, "width": 32}}
    processor = LlavaNextVideoProcessor(
        video_processor=LlavaNextVideoVideoProcessor(**square),
        image_processor=LlavaNextImageProcessor(**square, image_grid_pinpoints=[[32, 32]]),
        tokenizer=tok,
        patch_size=8,
        vision_feature_select_strategy="default",
        chat_template=CHATML,
    )
    processor.save_pretrained(folder)
    return save_model(model, tok, folder)


QWEN_TOKENS = [
    "<pad>",
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
QWEN_TEMPLATE = CHATML.replace(
    "{{ '<image>' }}", "{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
).replace("{{ '<video>' }}", "{{ '<|vision_start|><|video_pad|><|vision_end|>' }}")


def make_qwen25_vl(folder: Path, seed: int = 0) -> Path:
    """A Qwen2.5-VL model: 8 px patches merged 2x2, frames paired in time (temporal patch 2)."""
    import torch
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
    )
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    tok = train_tokenizer(QWEN_TOKENS)
    ids = tok.convert_tokens_to_ids(
        ["<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>", "<|im_end|>"]
    )
    text = tiny_text_config(len(tok), 1024)
    text.update(
        bos_token_id=ids[4],
        eos_token_id=ids[4],
        rope_parameters={"rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 10000.0},
    )
    config = Qwen2_5_VLConfig(
        vision_config=dict(QWEN25_VISION),
        text_config=text,
        image_token_id=ids[0],
        video_token_id=ids[1],
        vision_start_token_id=ids[2],
        vision_end_token_id=ids[3],
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    pixels = {
        "patch_size": 8,
        "merge_size": 2,
        "temporal_patch_size": 2,
        "min_pixels": 32 * 32,
        "max_pixels": 64 * 64,
    }
    Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(**pixels),
        video_processor=Qwen2VLVideoProcessor(**pixels, cap_pixels_per_frame=True),
        tokenizer=tok,
        chat_template=QWEN_TEMPLATE,
    ).save_pretrained(folder)
    return save_model(model, tok, folder)


# -- the family matrix: one processor per video-language family, as transformers builds it ------
@dataclass(frozen=True)
class Family:
    """How to build a tiny processor (and config) of one transformers model type."""

    model_type: str
    tokens: dict[str, str] = field(default_factory=dict)  # tokenizer attributes (image_token, ...)
    extra: tuple[str, ...] = ()  # more special tokens the processor writes
    video_text: str | None = None  # what the template writes for a video (default: video token)
    image_text: str | None = None
    bos: bool = False  # the template starts with {{ bos_token }} and the tokenizer adds BOS too
    image_kwargs: dict[str, Any] = field(default_factory=dict)
    video_kwargs: dict[str, Any] = field(default_factory=dict)
    processor_kwargs: dict[str, Any] = field(default_factory=dict)


QWEN3_IMAGE_SIZE = {"size": {"shortest_edge": 32 * 32, "longest_edge": 64 * 64}}
QWEN3_VIDEO_SIZE = {"size": {"shortest_edge": 32 * 32, "longest_edge": 64 * 64 * 8}}
QWEN_PIXELS = {"min_pixels": 32 * 32, "max_pixels": 64 * 64, "patch_size": 8, "merge_size": 2}
QWEN_WRAP = ("<|vision_start|>", "<|vision_end|>")
OMNI_TOKENS = {
    "image_token": "<|IMAGE|>",
    "video_token": "<|VIDEO|>",
    "audio_token": "<|AUDIO|>",
    "vision_bos_token": "<|vision_bos|>",
    "vision_eos_token": "<|vision_eos|>",
    "audio_bos_token": "<|audio_bos|>",
    "audio_eos_token": "<|audio_eos|>",
}
FAMILIES: dict[str, Family] = {
    f.model_type: f
    for f in [
        Family(
            "qwen2_vl",
            video_text="<|vision_start|><|video_pad|><|vision_end|>",
            image_text="<|vision_start|><|image_pad|><|vision_end|>",
            extra=QWEN_WRAP,
            image_kwargs=QWEN_PIXELS,
            video_kwargs=QWEN_PIXELS,
        ),
        Family(
            "qwen2_5_vl",
            video_text="<|vision_start|><|video_pad|><|vision_end|>",
            image_text="<|vision_start|><|image_pad|><|vision_end|>",
            extra=QWEN_WRAP,
            image_kwargs=QWEN_PIXELS,
            video_kwargs=QWEN_PIXELS,
        ),
        Family(
            "qwen3_vl",
            video_text="<|vision_start|><|video_pad|><|vision_end|>",
            image_text="<|vision_start|><|image_pad|><|vision_end|>",
            image_kwargs=QWEN3_IMAGE_SIZE,
            video_kwargs=QWEN3_VIDEO_SIZE,
        ),
        Family(
            "qwen3_5",
            video_text="<|vision_start|><|video_pad|><|vision_end|>",
            image_text="<|vision_start|><|image_pad|><|vision_end|>",
            image_kwargs=QWEN3_IMAGE_SIZE,
            video_kwargs=QWEN3_VIDEO_SIZE,
        ),
        Family(
            "qwen2_5_omni",
            tokens=OMNI_TOKENS,
            video_text="<|vision_bos|><|VIDEO|><|vision_eos|>",
            image_text="<|vision_bos|><|IMAGE|><|vision_eos|>",
            image_kwargs=QWEN_PIXELS,
            video_kwargs=QWEN_PIXELS,
        ),
        Family(
            "qwen3_omni_moe",
            tokens=OMNI_TOKENS,
            video_text="<|vision_bos|><|VIDEO|><|vision_eos|>",
            image_text="<|vision_bos|><|IMAGE|><|vision_eos|>",
            image_kwargs=QWEN_PIXELS,
            video_kwargs=QWEN_PIXELS,
        ),
        Family("llava_onevision", processor_kwargs={"num_image_tokens": 16}),
        Family("llava_next_video", processor_kwargs={"patch_size": 14}),
        Family(
            "internvl",
            tokens={
                "start_image_token": "<img>",
                "end_image_token": "</img>",
                "context_image_token": "<IMG_CONTEXT>",
                "video_token": "<video>",
            },
            processor_kwargs={"image_seq_length": 16},
        ),
        Family("smolvlm", processor_kwargs={"image_seq_len": 16}),
        Family(
            "gemma4",
            tokens={
                "image_token": "<|image|>",
                "boi_token": "<|image>",
                "eoi_token": "<image|>",
                "audio_token": "<|audio|>",
                "boa_token": "<|audio>",
                "eoa_token": "<audio|>",
            },
            extra=("<|video|>",),
            bos=True,
        ),
        Family("glm4v", video_text="<|begin_of_video|><|video|><|end_of_video|>"),
        Family("video_llava"),
        Family("video_llama_3"),
        Family(
            "perception_lm",
            tokens={"image_token": "<|image|>", "video_token": "<|video|>"},
            bos=True,
            processor_kwargs={"patch_size": 14},
        ),
        Family("molmo2"),
        Family(
            "minicpmv4_6",
            tokens={
                "image_token": "<unk>",
                "video_token": "<video>",
                "image_start_token": "<image>",
                "image_end_token": "</image>",
                "image_id_start_token": "<image_id>",
                "image_id_end_token": "</image_id>",
                "slice_start_token": "<slice>",
                "slice_end_token": "</slice>",
            },
        ),
        Family(
            "ernie4_5_vl_moe",
            tokens={
                "image_token": "<|IMAGE_PLACEHOLDER|>",
                "video_token": "<|VIDEO_PLACEHOLDER|>",
                "image_start_token": "<|IMAGE_START|>",
                "image_end_token": "<|IMAGE_END|>",
                "video_start_token": "<|VIDEO_START|>",
                "video_end_token": "<|VIDEO_END|>",
            },
            video_kwargs={"font": "pillow-default"},  # timestamps drawn on frames need a font
        ),
        Family("llava", processor_kwargs={"patch_size": 14}),
    ]
}


def chat_template(video: str, image: str, bos: bool) -> str:
    """A ChatML template writing `video`/`image` for media parts (after BOS when asked)."""
    start = "{{ bos_token }}" if bos else ""
    return start + CHATML.replace("{{ '<image>' }}", "{{ '" + image + "' }}").replace(
        "{{ '<video>' }}", "{{ '" + video + "' }}"
    )


def family_tokenizer(family: Family, tokens: list[str]) -> Any:
    """A tokenizer with the family's special tokens as attributes; BOS added when asked."""
    from tokenizers import processors

    base = ["<pad>", "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<bos>", "<unk>"]
    extra = [t for t in [*family.tokens.values(), *family.extra, *tokens] if t not in base]
    tok = train_tokenizer(list(dict.fromkeys(base + extra)))
    named = {k: v for k, v in family.tokens.items() if k not in ("unk_token",)}
    tok = type(tok)(
        tokenizer_object=tok.backend_tokenizer,
        pad_token="<pad>",
        eos_token="<|im_end|>",
        bos_token="<bos>",
        unk_token="<unk>",
        extra_special_tokens=named,
    )
    if family.bos:
        bos = tok.convert_tokens_to_ids("<bos>")
        tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
            single="<bos> $A", pair="<bos> $A <bos> $B", special_tokens=[("<bos>", bos)]
        )
    return tok


def processor_tokens(processor_class: type) -> list[str]:
    """Token-like string literals in the processor's module (the processor writes them)."""
    import importlib
    import inspect
    import re

    source = inspect.getsource(importlib.import_module(processor_class.__module__))
    return sorted(set(re.findall(r"[\"'](<[^\"'{}\s]{1,40}>)[\"']", source)))


def make_family_processor(model_type: str) -> Any:
    """The family's real processor class with a trained tokenizer and a ChatML-like template."""
    import inspect

    import transformers
    from transformers.models.auto.image_processing_auto import IMAGE_PROCESSOR_MAPPING_NAMES
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING_NAMES
    from transformers.models.auto.video_processing_auto import VIDEO_PROCESSOR_MAPPING_NAMES

    family = FAMILIES[model_type]
    cls = getattr(transformers, PROCESSOR_MAPPING_NAMES[model_type])
    parts: dict[str, Any] = {"tokenizer": family_tokenizer(family, processor_tokens(cls))}
    wanted = inspect.signature(cls.__init__).parameters
    if "image_processor" in wanted:
        names = IMAGE_PROCESSOR_MAPPING_NAMES[model_type]
        image_cls = getattr(transformers, names.get("torchvision") or names["pil"])
        parts["image_processor"] = image_cls(**family.image_kwargs)
    if "video_processor" in wanted:
        video_cls = getattr(transformers, VIDEO_PROCESSOR_MAPPING_NAMES[model_type]["torchvision"])
        video_kwargs = dict(family.video_kwargs)
        if video_kwargs.get("font") == "pillow-default":
            video_kwargs["font"] = pillow_font()
        parts["video_processor"] = video_cls(**video_kwargs)
    if "feature_extractor" in wanted:
        from transformers.models.auto.feature_extraction_auto import (
            FEATURE_EXTRACTOR_MAPPING_NAMES,
        )

        extractor = getattr(transformers, FEATURE_EXTRACTOR_MAPPING_NAMES[model_type])
        # the omni audio towers take 128 mel bins, as the published checkpoints' extractors do
        mels = {"feature_size": 128} if "omni" in model_type else {}
        parts["feature_extractor"] = extractor(**mels)
    processor = cls(**parts, **family.processor_kwargs)
    video = family.video_text or getattr(processor, "video_token", None) or "<video>"
    image = family.image_text or getattr(processor, "image_token", None) or "<image>"
    processor.chat_template = chat_template(video, image, family.bos)
    return processor


def pillow_font() -> str:
    """A TrueType file holding Pillow's built-in font (written once to a temporary folder)."""
    import tempfile

    from PIL import ImageFont

    path = Path(tempfile.gettempdir()) / "vidtt-pillow-default.ttf"
    if not path.exists():
        font = ImageFont.load_default(12)
        path.write_bytes(font.font_bytes)  # type: ignore[union-attr]
    return str(path)


def make_qwen25_omni(folder: Path, seed: int = 0) -> Path:
    """A Qwen2.5-Omni checkpoint in the published layout: the whole model's config
    (`qwen2_5_omni`, architectures `Qwen2_5OmniModel`, speech output on) with the thinker's
    weights under `thinker.`; its processor is the family's (see FAMILIES)."""
    import json

    import torch
    from transformers import Qwen2_5OmniConfig, Qwen2_5OmniForConditionalGeneration

    processor = make_family_processor("qwen2_5_omni")
    tok = processor.tokenizer
    ids = {name: tok.convert_tokens_to_ids(token) for name, token in OMNI_TOKENS.items()}
    text = tiny_text_config(len(tok), 4096)
    text.update(
        model_type="qwen2_5_omni_text",
        rope_parameters={"rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 1e4},
    )
    thinker = {
        "audio_config": {
            "encoder_layers": 1,
            "encoder_attention_heads": 2,
            "encoder_ffn_dim": 32,
            "d_model": 16,
            "output_dim": 32,
            "num_mel_bins": 128,
        },
        "vision_config": dict(QWEN25_VISION),
        "text_config": text,
        "image_token_index": ids["image_token"],
        "video_token_index": ids["video_token"],
        "audio_token_index": ids["audio_token"],
        "audio_start_token_id": ids["audio_bos_token"],
        "audio_end_token_id": ids["audio_eos_token"],
        "user_token_id": tok.convert_tokens_to_ids("<|im_start|>"),
        "vision_start_token_id": ids["vision_bos_token"],  # as in the published config
        "vision_end_token_id": ids["vision_eos_token"],
    }
    config = Qwen2_5OmniConfig(thinker_config=thinker, enable_audio_output=False)
    torch.manual_seed(seed)
    model = Qwen2_5OmniForConditionalGeneration(config)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    saved = json.loads((folder / "config.json").read_text())
    saved.update(architectures=["Qwen2_5OmniModel"], enable_audio_output=True)
    (folder / "config.json").write_text(json.dumps(saved, indent=2))
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    (folder / "generation_config.json").write_text(
        json.dumps({"eos_token_id": eos, "pad_token_id": tok.pad_token_id})
    )
    return folder
