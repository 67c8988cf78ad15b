"""Tiny random-weight Whisper models, built offline with `save_pretrained`: for tests and
benchmarks of the transcribers.

`make_tiny_whisper` builds a `WhisperForConditionalGeneration` with a `WhisperProcessor` (the
real feature extractor, and a byte-level BPE tokenizer trained on the spot with Whisper's
token layout: text tokens, `<|endoftext|>`, `<|startoftranscript|>`, the language tokens,
`<|translate|>`, `<|transcribe|>`, `<|startoflm|>`, `<|startofprev|>`, `<|nospeech|>`,
`<|notimestamps|>`, then the timestamp tokens `<|0.00|>` .. `<|30.00|>`) and a generation
config with every id Whisper's `generate` reads. It loads back through the ordinary
`from_pretrained` path. `WHISPER_TINY` is the shape of openai/whisper-tiny (38M parameters,
a vocabulary of 51865), for benchmarks; the default shape is a few hundred thousand.
transformers, torch and tokenizers are imported only when a model is built.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

# the shape of openai/whisper-tiny: 4+4 layers of width 384, 6 heads, all 99 languages
WHISPER_TINY: dict[str, Any] = {
    "d_model": 384,
    "layers": 4,
    "heads": 6,
    "ffn": 1536,
    "text_vocab": 50257,
    "languages": 99,  # the first 99 (large-v3 added a 100th, Cantonese)
}
LANGUAGES = ("en", "de", "fr")
CORPUS = [
    "Welcome to the lecture. Today we talk about cats, dogs and the birds over the lake.",
    "Guten Tag, heute sprechen wir über Katzen und Hunde im Park.",
    "Bonjour à tous, le chat dort sur le tapis et le chien joue avec la balle.",
] * 10
SPECIALS_AFTER_LANGUAGES = [
    "<|translate|>",
    "<|transcribe|>",
    "<|startoflm|>",
    "<|startofprev|>",
    "<|nospeech|>",
    "<|notimestamps|>",
]
TIME_PRECISION = 0.02
TIMESTAMPS = 1501  # <|0.00|> .. <|30.00|>


def whisper_languages() -> list[str]:
    """All the language codes Whisper knows, in its token order."""
    from transformers.models.whisper.tokenization_whisper import LANGUAGES as ALL

    return list(ALL)


def _corpus(text_vocab: int) -> list[str]:
    """Enough distinct text for a byte-level BPE of `text_vocab` tokens: the small corpus,
    plus made-up words when the vocabulary is large."""
    if text_vocab <= 1000:
        return CORPUS
    rng = random.Random(0)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = ["".join(rng.choices(letters, k=rng.randint(3, 9))) for _ in range(text_vocab * 2)]
    return CORPUS + [" ".join(words[i : i + 50]) for i in range(0, len(words), 50)]


def train_whisper_tokenizer(text_vocab: int = 400, languages: list[str] | None = None) -> Any:
    """A `WhisperTokenizer` with Whisper's token layout and `text_vocab` text tokens."""
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import AddedToken, WhisperTokenizer

    languages = list(LANGUAGES) if languages is None else languages
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=text_vocab,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(text_vocab), trainer)
    model = json.loads(tok.to_str())["model"]
    vocab: dict[str, int] = dict(model["vocab"])
    # pad to exactly text_vocab ids, as Whisper's 50257 text tokens are, so the specials'
    # ids sit where the real checkpoints have them
    filler = 0
    while len(vocab) < text_vocab:
        vocab[f"<|unused{filler}|>"] = len(vocab)
        filler += 1
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    vocab["<|endoftext|>"] = len(vocab)
    tokenizer = WhisperTokenizer(vocab=vocab, merges=merges, pad_token="<|endoftext|>")
    specials = (
        ["<|startoftranscript|>"] + [f"<|{code}|>" for code in languages] + SPECIALS_AFTER_LANGUAGES
    )
    tokenizer.add_special_tokens({"additional_special_tokens": specials})
    stamps = [f"<|{i * TIME_PRECISION:.2f}|>" for i in range(TIMESTAMPS)]
    tokenizer.add_tokens([AddedToken(s, lstrip=False, rstrip=False) for s in stamps])
    return tokenizer


def make_tiny_whisper(
    folder: Path,
    *,
    d_model: int = 32,
    layers: int = 1,
    heads: int = 2,
    ffn: int = 64,
    text_vocab: int = 400,
    languages: int | list[str] | tuple[str, ...] = LANGUAGES,
    favour: str | None = None,
    seed: int = 0,
) -> Path:
    """Save a random Whisper in `folder` and return it. `languages`: codes, or a number N
    for the first N of Whisper's (99: whisper-tiny's; 100: large-v3's).
    `favour` a language code: bias the decoder so that its token wins language detection
    (the decoder's output then no longer depends on the audio)."""
    import torch
    from transformers import (
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
    )

    folder = Path(folder)
    codes = whisper_languages()[:languages] if isinstance(languages, int) else list(languages)
    tokenizer = train_whisper_tokenizer(text_vocab, codes)
    ids = tokenizer.convert_tokens_to_ids
    eot, sot = ids("<|endoftext|>"), ids("<|startoftranscript|>")
    space = tokenizer.encode(" ", add_special_tokens=False)
    config = WhisperConfig(
        vocab_size=len(tokenizer),
        num_mel_bins=80,
        d_model=d_model,
        encoder_layers=layers,
        decoder_layers=layers,
        encoder_attention_heads=heads,
        decoder_attention_heads=heads,
        encoder_ffn_dim=ffn,
        decoder_ffn_dim=ffn,
        max_source_positions=1500,
        max_target_positions=448,
        decoder_start_token_id=sot,
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        begin_suppress_tokens=None,  # in the generation config only
        suppress_tokens=None,
    )
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config).eval()
    if favour is not None:
        _favour_language(model, [ids(f"<|{c}|>") for c in codes], ids(f"<|{favour}|>"))
    _whisper_generation(model.generation_config, ids, codes, space)
    model.save_pretrained(folder)
    processor = WhisperProcessor(feature_extractor=WhisperFeatureExtractor(), tokenizer=tokenizer)
    processor.save_pretrained(folder)
    return folder


def _whisper_generation(gen: Any, ids: Any, codes: list[str], space: list[int]) -> None:
    """Whisper's generation settings (`gen`, the model's generation config) for the tokenizer
    whose token ids `ids` gives, as whisper-tiny's checkpoint has them."""
    eot, sot = ids("<|endoftext|>"), ids("<|startoftranscript|>")
    gen.decoder_start_token_id = sot
    gen.bos_token_id = gen.eos_token_id = gen.pad_token_id = eot
    gen.no_timestamps_token_id = ids("<|notimestamps|>")
    gen.prev_sot_token_id = ids("<|startofprev|>")
    gen.lang_to_id = {f"<|{c}|>": ids(f"<|{c}|>") for c in codes}
    gen.task_to_id = {"transcribe": ids("<|transcribe|>"), "translate": ids("<|translate|>")}
    gen.is_multilingual = True
    gen.max_initial_timestamp_index = 50
    gen.max_length = 448
    gen.begin_suppress_tokens = [*space[:1], eot]
    gen.suppress_tokens = []
    gen.return_timestamps = False
    gen.forced_decoder_ids = None
    gen._from_model_config = False  # else from_pretrained rebuilds it from the model config


def _favour_language(model: Any, languages: list[int], favoured: int) -> None:
    """Make the decoder's output a constant vector `b` (its final layer norm's bias) and tie
    the favoured language token's logit to `b`: of the language tokens it alone scores above
    zero, so `detect_language` picks it whatever the audio."""
    import torch

    with torch.no_grad():
        norm = model.model.decoder.layer_norm
        norm.weight.zero_()
        bias = torch.randn_like(norm.bias)
        norm.bias.copy_(bias)
        head = model.get_output_embeddings().weight
        for token in languages:
            head[token].zero_()
        head[favoured].copy_(bias / bias.norm())
