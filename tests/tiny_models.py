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
