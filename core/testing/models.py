"""Tiny random-weight video-language models, built offline with `save_pretrained`: for tests,
benchmarks and `vidtt demo`.

`make_tiny_llava` builds a llava-interleave-like `LlavaForConditionalGeneration` (SigLIP vision
tower, Qwen2 text model, ChatML template) with a byte-level BPE tokenizer trained on the spot.
transformers, torch and tokenizers are imported only when a model is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SPECIAL_TOKENS = ["<pad>", "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"]
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}{{ '<image>' }}"
    "{% elif part['type'] == 'video' %}{{ '<video>' }}{% elif part['type'] == 'text' %}"
    "{{ part['text'] }}{% endif %}{% endfor %}{% endif %}{{ '<|im_end|>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CORPUS = [
    "What is happening in this video? The cat sits on the mat and looks around.",
    "Describe the two videos. A dog runs in the park; a bird flies over the lake.",
    "Are these two cats doing the same thing? One sleeps, the other plays with a ball.",
] * 10
# a vision tower of 32 px images in 8 px patches: 16 patches per image
TINY_VISION: dict[str, Any] = {
    "hidden_size": 32,
    "intermediate_size": 48,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "image_size": 32,
    "patch_size": 8,
}


def train_tokenizer(special_tokens: list[str] | None = None) -> Any:
    """A small byte-level BPE tokenizer with ChatML and media special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=500,
        special_tokens=special_tokens or SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<|im_end|>")


def tiny_text_config(vocab: int, context: int, hidden: int = 32, layers: int = 2) -> dict[str, Any]:
    from transformers import Qwen2Config

    return Qwen2Config(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=hidden * 3 // 2,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=context,
    ).to_dict()


def save_model(model: Any, tokenizer: Any, folder: Path) -> Path:
    """Save with generation stopping at `<|im_end|>`."""
    model.generation_config.eos_token_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder)
    return folder


def make_tiny_llava(
    folder: Path,
    context: int = 1024,
    seed: int = 0,
    image_size: int = 32,
    patch_size: int = 8,
    hidden: int = 32,
    layers: int = 2,
) -> Path:
    """A llava-interleave-like model: each image is (image_size / patch_size)^2 tokens (16 by
    default: 32 px in 8 px patches); `hidden` and `layers` size the text model."""
    import torch
    from transformers import (
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        SiglipImageProcessor,
        SiglipVisionConfig,
    )

    tok = train_tokenizer()
    vision = SiglipVisionConfig(
        **{**TINY_VISION, "image_size": image_size, "patch_size": patch_size}
    )
    config = LlavaConfig(
        vision_config=vision.to_dict(),
        text_config=tiny_text_config(len(tok), context, hidden, layers),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    LlavaProcessor(
        image_processor=SiglipImageProcessor(size={"height": image_size, "width": image_size}),
        tokenizer=tok,
        patch_size=patch_size,
        vision_feature_select_strategy="full",
        chat_template=CHATML,
    ).save_pretrained(folder)
    return save_model(model, tok, folder)
