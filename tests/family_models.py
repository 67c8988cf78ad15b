"""A tiny random-weight model of every video-language family in the test matrix.

`make_family_model(model_type, folder)` saves, with save_pretrained, a model of the family's
real generation class (`AutoModelForImageTextToText`'s; for the omni families the whole model
with speech output off, whose thinker vidtt loads) whose config agrees with
`tiny_models.make_family_processor(model_type)`: the same media token ids, patch and merge sizes
and per-frame token counts. Text models keep the family's own text config at 2 layers (3 for
Gemma 4) of hidden size 32; vision towers have one layer. The families with a maker of their own
in `tiny_models` (llava, llava_next_video, qwen2_5_vl, qwen2_5_omni) use it, with that maker's
processor (the family's class, smaller images).

What generation does beyond a plain causal decoder with a DynamicCache of full layers:
- 3D rope position ids computed from the media grids (`get_rope_index`, kept between prefill and
  decode as the model's `rope_deltas`): qwen2_vl, qwen2_5_vl, qwen3_vl, qwen3_5, qwen2_5_omni,
  qwen3_omni_moe (time in seconds), glm4v, ernie4_5_vl_moe;
- linear-attention layers (a recurrent state, `LinearAttentionLayer` in the cache): qwen3_5 and
  minicpmv4_6 (whose text model is Qwen3.5's);
- a sliding-window layer (`DynamicSlidingWindowLayer`, window 64 < the prompt) and KV sharing
  (transformers 5.25 adds a `DummyLayer` for the sharing layer, 5.20 none): gemma4;
- bidirectional attention over image tokens in prefill (from `mm_token_type_ids`): molmo2;
- mixture-of-experts text layers: qwen3_omni_moe, ernie4_5_vl_moe (text and vision experts
  chosen by `moe_mm_token_type_ids`).
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tiny_models import (
    FAMILIES,
    make_family_processor,
    make_llava,
    make_llava_next_video,
    make_qwen25_omni,
    make_qwen25_vl,
)

from vidtt.testing.models import save_model

# model type -> why no tiny model of the family is built (none now: every family is)
UNBUILT: dict[str, str] = {}
HIDDEN = 32


def text_config(tok: Any, **extra: Any) -> dict[str, Any]:
    """A 2-layer text config over the tokenizer's vocabulary, ending at `<|im_end|>`."""
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    return {
        "vocab_size": len(tok),
        "hidden_size": HIDDEN,
        "intermediate_size": HIDDEN * 3 // 2,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "max_position_embeddings": 4096,
        "bos_token_id": tok.convert_tokens_to_ids("<bos>"),
        "eos_token_id": eos,
        "pad_token_id": tok.pad_token_id,
        **extra,
    }


def ids(tok: Any, **tokens: str) -> dict[str, Any]:
    """`name=token` as `name=id`."""
    return {name: tok.convert_tokens_to_ids(token) for name, token in tokens.items()}


def mrope(section: list[int], **extra: Any) -> dict[str, Any]:
    return {"rope_type": "default", "mrope_section": section, "rope_theta": 1e4, **extra}


def qwen_vision(patch: int, **extra: Any) -> dict[str, Any]:
    """A one-layer Qwen-VL vision tower of `patch` px patches paired in time, merged 2x2."""
    return {
        "depth": 1,
        "hidden_size": HIDDEN,
        "num_heads": 2,
        "patch_size": patch,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        **extra,
    }


def qwen3_vision(patch: int, deepstack: bool = True) -> dict[str, Any]:
    """The Qwen3-VL tower (also Qwen3.5's and Qwen3-Omni's); one deepstack layer."""
    vision = qwen_vision(patch, intermediate_size=48, out_hidden_size=HIDDEN)
    vision["num_position_embeddings"] = 64
    return {**vision, "deepstack_visual_indexes": [0]} if deepstack else vision


def qwen_ids(tok: Any) -> dict[str, Any]:
    return ids(
        tok,
        image_token_id="<|image_pad|>",
        video_token_id="<|video_pad|>",
        vision_start_token_id="<|vision_start|>",
        vision_end_token_id="<|vision_end|>",
    )


def qwen2_vl(processor: Any) -> Any:
    from transformers import Qwen2VLConfig

    tok = processor.tokenizer
    vision = qwen_vision(8, embed_dim=HIDDEN, mlp_ratio=2)
    text = text_config(tok, rope_parameters=mrope([2, 3, 3]))
    return Qwen2VLConfig(vision_config=vision, text_config=text, **qwen_ids(tok))


def qwen3_vl(processor: Any) -> Any:
    from transformers import Qwen3VLConfig

    tok = processor.tokenizer
    text = text_config(tok, head_dim=16, rope_parameters=mrope([2, 3, 3], mrope_interleaved=True))
    return Qwen3VLConfig(vision_config=qwen3_vision(16), text_config=text, **qwen_ids(tok))


def qwen3_5_text(tok: Any) -> dict[str, Any]:
    """Qwen3.5's text model as published: a linear-attention (gated delta net) layer, then a
    full-attention one, 3D rope on a quarter of each head."""
    return text_config(
        tok,
        head_dim=16,
        linear_key_head_dim=8,
        linear_value_head_dim=8,
        linear_num_key_heads=2,
        linear_num_value_heads=4,
        layer_types=["linear_attention", "full_attention"],
        rope_parameters=mrope([2, 1, 1], mrope_interleaved=True, partial_rotary_factor=0.5),
    )


def qwen3_5(processor: Any) -> Any:
    from transformers import Qwen3_5Config

    tok = processor.tokenizer
    vision = qwen3_vision(16, deepstack=False)
    return Qwen3_5Config(vision_config=vision, text_config=qwen3_5_text(tok), **qwen_ids(tok))


def qwen3_omni_moe(processor: Any) -> Any:
    """The whole Qwen3-Omni model's config (speech output off: only the thinker is built)."""
    from transformers import Qwen3OmniMoeConfig

    tok = processor.tokenizer
    text = text_config(
        tok,
        head_dim=16,
        moe_intermediate_size=16,
        num_experts=4,
        num_experts_per_tok=2,
        rope_parameters=mrope([2, 3, 3], mrope_interleaved=True),
    )
    audio = {
        "encoder_layers": 1,
        "encoder_attention_heads": 2,
        "encoder_ffn_dim": 32,
        "d_model": 16,
        "output_dim": HIDDEN,
        "num_mel_bins": 128,
        "downsample_hidden_size": 8,
    }
    thinker = {
        "audio_config": audio,
        "vision_config": qwen3_vision(8),
        "text_config": text,
        "user_token_id": tok.convert_tokens_to_ids("<|im_start|>"),
        **ids(
            tok,
            image_token_id="<|IMAGE|>",
            video_token_id="<|VIDEO|>",
            audio_token_id="<|AUDIO|>",
            audio_start_token_id="<|audio_bos|>",
            audio_end_token_id="<|audio_eos|>",
            vision_start_token_id="<|vision_bos|>",
            vision_end_token_id="<|vision_eos|>",
        ),
    }
    return Qwen3OmniMoeConfig(thinker_config=thinker, enable_audio_output=False)


def tower(patch: int, **extra: Any) -> dict[str, Any]:
    """A one-layer ViT (SigLIP, CLIP and their kin) of `patch` px patches."""
    return {
        "hidden_size": HIDDEN,
        "intermediate_size": 48,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "patch_size": patch,
        **extra,
    }


def llava_onevision(processor: Any) -> Any:
    """384 px frames in 96 px patches: the processor's 16 tokens, pooled 2x2 for videos."""
    from transformers import LlavaOnevisionConfig

    tok = processor.tokenizer
    return LlavaOnevisionConfig(
        vision_config=tower(96, model_type="siglip_vision_model", image_size=384),
        text_config=text_config(tok),
        image_grid_pinpoints=processor.image_processor.image_grid_pinpoints,
        vision_feature_select_strategy="full",
        **ids(
            tok, image_token_index=processor.image_token, video_token_index=processor.video_token
        ),
    )


def internvl(processor: Any) -> Any:
    """384 px frames in 48 px patches (64, after the CLS token), shuffled 2x2: 16 tokens."""
    from transformers import InternVLConfig

    tok = processor.tokenizer
    vision = tower(48, image_size=384)
    return InternVLConfig(
        vision_config=vision,
        text_config=text_config(tok),
        image_seq_length=processor.image_seq_length,
        image_token_id=tok.convert_tokens_to_ids(processor.image_token),
    )


def smolvlm(processor: Any) -> Any:
    """364 px frames in 13 px patches (28x28), shuffled 7x7: the processor's 16 tokens."""
    from transformers import SmolVLMConfig

    tok = processor.tokenizer
    return SmolVLMConfig(
        vision_config=tower(13, image_size=364),
        text_config=text_config(tok),
        scale_factor=7,
        image_token_id=tok.convert_tokens_to_ids(processor.image_token),
    )


def gemma4(processor: Any) -> Any:
    """Gemma 4 as its small checkpoints (E2B, E4B) are: a sliding-window layer (its window
    shorter than the prompt) and global ones, the last reusing the one before's keys and values
    (KV sharing), per-layer input embeddings; 16 px patches pooled 3x3; no audio tower."""
    from transformers import Gemma4Config

    tok = processor.tokenizer
    text = text_config(
        tok,
        head_dim=16,
        global_head_dim=16,
        num_hidden_layers=3,
        layer_types=["sliding_attention", "full_attention", "full_attention"],
        num_kv_shared_layers=1,
        sliding_window=64,
        hidden_size_per_layer_input=8,
        vocab_size_per_layer_input=len(tok),
    )
    vision = {
        "hidden_size": HIDDEN,
        "intermediate_size": 48,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "patch_size": processor.image_processor.patch_size,
        "pooling_kernel_size": processor.image_processor.pooling_kernel_size,
        "position_embedding_size": 256,
    }
    return Gemma4Config(
        text_config=text,
        vision_config=vision,
        audio_config=None,
        **ids(
            tok,
            boi_token_id=processor.boi_token,
            eoi_token_id=processor.eoi_token,
            image_token_id=processor.image_token,
            video_token_id=processor.video_token,
            boa_token_id="<|audio>",
            eoa_token_index="<audio|>",
            audio_token_id="<|audio|>",
        ),
    )


def glm4v(processor: Any) -> Any:
    """GLM-4.1V: 14 px patches paired in time, merged 2x2; 3D rope on half the head."""
    from transformers import Glm4vConfig

    tok = processor.tokenizer
    vision = {
        "depth": 1,
        "hidden_size": HIDDEN,
        "intermediate_size": 48,
        "num_heads": 2,
        "image_size": 56,
        "patch_size": processor.video_processor.patch_size,
        "spatial_merge_size": processor.video_processor.merge_size,
        "temporal_patch_size": processor.video_processor.temporal_patch_size,
        "out_hidden_size": HIDDEN,
    }
    rope = mrope([2, 1, 1], partial_rotary_factor=0.5)
    return Glm4vConfig(
        vision_config=vision,
        text_config=text_config(tok, rope_parameters=rope),
        **ids(
            tok,
            image_token_id=processor.image_token,
            video_token_id=processor.video_token,
            image_start_token_id="<|begin_of_image|>",
            image_end_token_id="<|end_of_image|>",
            video_start_token_id="<|begin_of_video|>",
            video_end_token_id="<|end_of_video|>",
        ),
    )


def video_llava(processor: Any) -> Any:
    """224 px frames in 14 px patches: 256 tokens and the CLS token per frame."""
    from transformers import VideoLlavaConfig

    tok = processor.tokenizer
    vision = tower(processor.patch_size, model_type="clip_vision_model", image_size=224)
    return VideoLlavaConfig(
        vision_config=vision,
        text_config=text_config(tok),
        vision_feature_layer=-1,
        vision_feature_select_strategy=processor.vision_feature_select_strategy,
        **ids(
            tok, image_token_index=processor.image_token, video_token_index=processor.video_token
        ),
    )


def video_llama_3(processor: Any) -> Any:
    """VideoLLaMA 3: 14 px patches, frames merged 2x2 and compressed by the processor."""
    from transformers import VideoLlama3Config

    tok = processor.tokenizer
    return VideoLlama3Config(
        vision_config=tower(processor.video_processor.patch_size),
        text_config=text_config(tok),
        **ids(tok, image_token_id=processor.image_token, video_token_id=processor.video_token),
    )


def molmo2(processor: Any) -> Any:
    """Molmo2: 378 px frames in 14 px patches (27x27), pooled 3x3 by attention; text with
    qk-norm and extra embedding rows past the vocabulary."""
    from transformers import Molmo2Config

    tok = processor.tokenizer
    patch = processor.video_processor.patch_size
    vision = tower(patch, image_size=[378, 378], head_dim=16, num_key_value_heads=2)
    adapter = {
        "vision_feature_layer": [-1],
        "hidden_size": HIDDEN,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "intermediate_size": 48,
        "text_hidden_size": HIDDEN,
    }
    return Molmo2Config(
        vision_config=vision,
        adapter_config=adapter,
        text_config=text_config(tok, head_dim=16, additional_vocab_size=8),
        **ids(
            tok,
            image_start_token_id="<im_start>",
            low_res_image_start_token_id="<low_res_im_start>",
            image_end_token_id="<im_end>",
            image_patch_id="<im_patch>",
            frame_start_token_id="<frame_start>",
            frame_end_token_id="<frame_end>",
        ),
    )


def minicpmv4_6(processor: Any) -> Any:
    """MiniCPM-V 4.6: 14 px patches, merged 2x2 inside the vision tower (after its first
    layer) and 2x2 again after it (the processor's 16x); a Qwen3.5 text model."""
    from transformers import MiniCPMV4_6Config

    tok = processor.tokenizer
    vision = tower(processor.video_processor.patch_size, image_size=448, num_hidden_layers=2)
    return MiniCPMV4_6Config(
        vision_config=vision,
        text_config={"model_type": "qwen3_5_text", **qwen3_5_text(tok)},
        insert_layer_id=0,
        image_size=processor.video_processor.scale_resolution,
        downsample_mode=processor.video_processor.downsample_mode,
        **ids(tok, image_token_id=processor.image_token, video_token_id=processor.video_token),
    )


def ernie4_5_vl_moe(processor: Any) -> Any:
    """ERNIE 4.5 VL: 14 px patches merged 2x2 and paired in time after the vision tower; a
    dense layer then a mixture-of-experts one (text and vision experts), 3D rope."""
    from transformers import Ernie4_5_VLMoeConfig

    tok = processor.tokenizer
    video = processor.video_processor
    vision = {
        "depth": 1,
        "hidden_size": HIDDEN,
        "intermediate_size": 48,
        "num_heads": 2,
        "patch_size": video.patch_size,
        "spatial_merge_size": video.merge_size,
        "temporal_merge_size": video.temporal_patch_size,
    }
    text = text_config(
        tok,
        moe_intermediate_size=[16, 8],
        moe_k=2,
        moe_num_experts=4,
        moe_num_shared_experts=1,
        rope_parameters={"rope_type": "default", "rope_theta": 1e4, "mrope_section": [3, 3, 2]},
    )
    names = ["image_token", "video_token", "image_start_token", "image_end_token"]
    names += ["video_start_token", "video_end_token"]
    return Ernie4_5_VLMoeConfig(
        vision_config=vision,
        text_config=text,
        **ids(tok, **{f"{name}_id": getattr(processor, name) for name in names}),
    )


def perception_lm(processor: Any) -> Any:
    """PerceptionLM: 448 px frames in 14 px patches after a CLS token, pooled 2x2.

    The published vision tower is a timm Perception Encoder (`TimmWrapper`), and timm is no
    dependency of vidtt: a one-layer CLIP tower of the same geometry stands in (its
    `model_args` give the projector its input size, as the timm config's do)."""
    from transformers import PerceptionLMConfig

    tok = processor.tokenizer
    vision = tower(processor.patch_size, model_type="clip_vision_model", image_size=448)
    vision["model_args"] = {"embed_dim": HIDDEN}
    return PerceptionLMConfig(
        vision_config=vision,
        text_config=text_config(tok),
        vision_use_cls_token=True,
        projector_pooling_ratio=processor.pooling_ratio,
        **ids(tok, image_token_id=processor.image_token, video_token_id=processor.video_token),
    )


BUILDERS: dict[str, Callable[[Any], Any]] = {
    "qwen2_vl": qwen2_vl,
    "qwen3_vl": qwen3_vl,
    "qwen3_5": qwen3_5,
    "qwen3_omni_moe": qwen3_omni_moe,
    "llava_onevision": llava_onevision,
    "internvl": internvl,
    "smolvlm": smolvlm,
    "gemma4": gemma4,
    "glm4v": glm4v,
    "video_llava": video_llava,
    "video_llama_3": video_llama_3,
    "molmo2": molmo2,
    "minicpmv4_6": minicpmv4_6,
    "ernie4_5_vl_moe": ernie4_5_vl_moe,
    "perception_lm": perception_lm,
}
OWN_MAKERS: dict[str, Callable[..., Path]] = {
    "llava": make_llava,
    "llava_next_video": make_llava_next_video,
    "qwen2_5_vl": make_qwen25_vl,
    "qwen2_5_omni": make_qwen25_omni,
}


def model_class(config: Any) -> Any:
    """The generation class of `config`'s family (the whole model for omni configs)."""
    import transformers
    from transformers import AutoModelForImageTextToText

    mapping = AutoModelForImageTextToText._model_mapping
    if type(config) in mapping:
        return mapping[type(config)]
    return getattr(
        transformers, type(config).__name__.replace("Config", "ForConditionalGeneration")
    )


def make_family_model(model_type: str, folder: Path, seed: int = 0) -> Path:
    """Save a tiny random-weight model of `model_type` with its processor into `folder`."""
    import torch

    if model_type in UNBUILT:
        raise ValueError(f"no tiny {model_type} model: {UNBUILT[model_type]}")
    if model_type in OWN_MAKERS:
        return OWN_MAKERS[model_type](folder, seed=seed)
    if model_type not in FAMILIES or model_type not in BUILDERS:
        raise ValueError(f"no tiny model maker for {model_type!r}: add one to BUILDERS")
    processor = make_family_processor(model_type)
    config = BUILDERS[model_type](processor)
    torch.manual_seed(seed)
    model = model_class(config)(config)
    processor.save_pretrained(folder)
    return save_model(model, processor.tokenizer, folder)


@functools.cache
def family_model_dir(model_type: str) -> Path:
    """The tiny model of `model_type`, built once per process into a temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix=f"vidtt-{model_type}-"))
    atexit.register(shutil.rmtree, folder, True)
    return make_family_model(model_type, folder)
