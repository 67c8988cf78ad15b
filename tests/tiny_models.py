"""Tiny random-weight video-language models, built offline and saved with save_pretrained.

The llava-interleave-like model is the one `vidtt demo` uses; this adds a native-video
`LlavaNextVideoForConditionalGeneration` with the same tokenizer and template.
"""

from __future__ import annotations

from pathlib import Path

from vidtt.demo import (
    CHATML,
    TINY_VISION,
    make_tiny_llava,
    save_model,
    tiny_text_config,
    train_tokenizer,
)

make_llava = make_tiny_llava


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
        vision_config={
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
        },
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
