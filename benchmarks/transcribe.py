"""Transcription: vidtt's `whisper` transcriber against transformers' own ASR pipeline (and
faster-whisper, when installed), on the same model, chunking and token budget, in one run.

    python benchmarks/transcribe.py [--seconds 600] [--long 3600] [--batch-size 8]
                                    [--max-new-tokens 32] [--long-tokens 4] [--no-long]
                                    [--engines vidtt,transformers,...] [--long-engines ...]

The workload: a synthetic speech-like track (voiced syllables with a wandering pitch and three
formants, in phrases between pauses, over a faint noise floor), `--seconds` long, AAC in an
.m4a, made once in benchmarks/data/, on a random Whisper of whisper-tiny's shape (d_model 384,
4+4 layers, 6 heads, a vocabulary of 51865, 99 languages; built offline into
benchmarks/data/), language forced to English, greedy, on the CPU.

  vidtt                 `WhisperTranscriber().transcribe(path, ...)`: window 30 s, overlap 10 s
                        (the pipeline's chunking: 30 s chunks, 5 s stride on each side, a new
                        chunk every 20 s), `--batch-size` windows per generate call, at most
                        `--max-new-tokens` tokens per window; the audio read with
                        `audio_windows` as it goes;
  vidtt-default         the same with vidtt's default overlap, 5 s (a window every 25 s);
  transformers          `pipeline("automatic-speech-recognition", model=..., chunk_length_s=30,
                        batch_size=B, return_timestamps=True)`, generate_kwargs max_new_tokens
                        N, language en, num_beams 1 (greedy, as vidtt; the pipeline's own
                        default is 5 beams); the file decoded with PyAV to 16 kHz mono first (timed
                        too: the pipeline needs ffmpeg for a path). Whisper's generate
                        re-seeks inside a chunk after its last complete segment, so random
                        weights make it decode each chunk several times;
  transformers-1pass    the same with generate_kwargs force_unique_generate_call=True: one pass
                        per chunk, the same decoder work as vidtt's (the like-for-like row).
  faster-whisper(-int8) the same weights converted with ctranslate2's TransformersConverter
                        (float32), `WhisperModel(compute_type=float32 | int8).transcribe(path,
                        ...)`: its own sequential 30 s windows (it cannot batch without VAD),
                        temperature 0 without fallback, max_new_tokens N.

Each engine runs in a fresh process: the model is loaded and warmed on 30 s of the track
(untimed), then the whole track is transcribed and timed, audio decoding included. Printed:
seconds, the real-time factor, the windows the encoder saw and the decoder's row-steps (one per
window per generated position; random weights rarely stop early, so this shows that each side
generated as much), segments, and the RSS high-water with its growth over the RSS after the
warm-up. `--long` seconds (1 hour) then runs `--long-engines` once more for memory with
`--long-tokens` tokens per window. For faster-whisper the row-steps column counts the tokens
of its segments (CTranslate2 has no hooks).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"
RATE = 16_000
ENGINES = (
    "vidtt",
    "vidtt-default",
    "transformers",
    "transformers-1pass",
    "faster-whisper",
    "faster-whisper-int8",
)
LONG_ENGINES = ("vidtt", "transformers-1pass", "faster-whisper-int8")


# -- the track ------------------------------------------------------------------------------


def speech_like(seconds: float, seed: int) -> Any:
    """`seconds` of voiced syllables (pitch 90-220 Hz gliding, three formants) in phrases of
    4-13 syllables between pauses of 0.2-0.8 s, over noise at -60 dB."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = (rng.standard_normal(round(seconds * RATE)) * 1e-3).astype(np.float32)
    t = rng.uniform(0, 0.5)
    while t < seconds:
        for _ in range(int(rng.integers(4, 14))):
            length = rng.uniform(0.12, 0.3)
            first, count = round(t * RATE), round(length * RATE)
            if first + count > len(out):
                break
            f0 = rng.uniform(90, 220) * np.linspace(1, rng.uniform(0.85, 1.15), count)
            phase = 2 * np.pi * np.cumsum(f0) / RATE
            formants = rng.uniform([300, 900, 2200], [900, 2400, 3200])
            voice = np.zeros(count)
            for k in range(1, 16):
                gain = np.exp(-(((k * f0[:, None] - formants) / 180.0) ** 2)).sum(axis=1)
                voice += gain * np.sin(k * phase)
            envelope = np.hanning(count)
            out[first : first + count] += (
                0.2 * envelope * voice / (np.abs(voice).max() + 1e-9)
            ).astype(np.float32)
            t += length
        t += rng.uniform(0.2, 0.8)
    return out


def make_track(seconds: float) -> Path:
    """The speech-like track as AAC in an .m4a (made once, in pieces of a minute)."""
    import av
    import numpy as np

    path = DATA / f"speech-{seconds:g}s.m4a"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.m4a")
    with av.open(str(partial), "w") as container:
        stream = container.add_stream("aac", rate=RATE, layout="mono")
        pts = 0
        for minute in range(int(np.ceil(seconds / 60))):
            piece = speech_like(min(60.0, seconds - minute * 60), seed=minute)
            for start in range(0, len(piece), 1024):
                chunk = piece[start : start + 1024]
                frame = av.AudioFrame.from_ndarray(chunk[None, :], format="flt", layout="mono")
                frame.sample_rate, frame.pts = RATE, pts
                pts += len(chunk)
                for packet in stream.encode(frame):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    partial.rename(path)
    return path


def make_models() -> tuple[Path, Path]:
    """The whisper-tiny-shaped random Whisper, and its CTranslate2 conversion (when
    ctranslate2 is installed)."""
    from vidtt.testing.speech import WHISPER_TINY, make_tiny_whisper

    folder, converted = DATA / "whisper-tiny-random", DATA / "whisper-tiny-random-ct2"
    if not (folder / "model.safetensors").exists():
        make_tiny_whisper(folder, **WHISPER_TINY)
    if not (converted / "model.bin").exists():
        try:
            from ctranslate2.converters import TransformersConverter
        except ImportError:
            return folder, converted
        TransformersConverter(str(folder), copy_files=["tokenizer.json"]).convert(
            str(converted), quantization="float32", force=True
        )
    return folder, converted


# -- one engine, in a child process ---------------------------------------------------------


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def high_water() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Counter:
    """Forward hooks on a torch Whisper: encoder rows (windows) and decoder row-steps."""

    def __init__(self, model: Any) -> None:
        self.encoder = self.decoder = 0
        model.model.encoder.register_forward_hook(self._encoder)
        model.model.decoder.register_forward_hook(self._decoder)

    def _encoder(self, module: Any, args: Any, output: Any) -> None:
        self.encoder += output[0].shape[0]

    def _decoder(self, module: Any, args: Any, output: Any) -> None:
        self.decoder += output[0].shape[0]

    def reset(self) -> None:
        self.encoder = self.decoder = 0


def decode_file(path: Path, seconds: float | None = None) -> Any:
    """The file at 16 kHz mono float32, with PyAV (what the pipeline gets)."""
    import av
    import numpy as np

    pieces = []
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                pieces.append(out.to_ndarray()[0])
            if seconds is not None and sum(map(len, pieces)) >= seconds * RATE:
                break
    audio = np.concatenate(pieces)
    return audio if seconds is None else audio[: round(seconds * RATE)]


def child(engine: str, model: Path, track: Path, warm: Path, batch: int, tokens: int) -> dict:
    import torch

    result: dict[str, Any] = {"engine": engine}
    if engine.startswith("vidtt"):
        from vidtt.transcribers.whisper import WhisperTranscriber

        transcriber = WhisperTranscriber()
        options = transcriber.options(
            model=str(model), window=30, overlap=5 if engine.endswith("default") else 10,
            batch_size=batch, max_new_tokens=tokens,
            language="en",
        )  # fmt: skip
        counter = Counter(transcriber.load(str(model)).model)
        transcriber.transcribe(warm, options)

        def run(path: Path) -> int:
            return len(transcriber.transcribe(path, options).segments)

    elif engine.startswith("transformers"):
        from transformers import pipeline

        asr = pipeline(
            "automatic-speech-recognition", model=str(model), chunk_length_s=30,
            batch_size=batch, return_timestamps=True, device="cpu", dtype=torch.float32,
        )  # fmt: skip
        counter = Counter(asr.model)
        kwargs: dict[str, Any] = {
            "max_new_tokens": tokens, "language": "en", "task": "transcribe",
            "num_beams": 1,  # greedy, as vidtt's default (the pipeline's own default is 5 beams)
        }  # fmt: skip
        if engine.endswith("1pass"):  # one generate pass per chunk, as vidtt makes per window
            kwargs["force_unique_generate_call"] = True
        asr({"raw": decode_file(warm), "sampling_rate": RATE}, generate_kwargs=kwargs)

        def run(path: Path) -> int:
            out = asr({"raw": decode_file(path), "sampling_rate": RATE}, generate_kwargs=kwargs)
            return len(out["chunks"])

    else:
        from faster_whisper import WhisperModel

        fw = WhisperModel(
            str(model), device="cpu", cpu_threads=os.cpu_count() or 1,
            compute_type="int8" if engine.endswith("int8") else "float32",
        )  # fmt: skip
        counter = None
        kwargs = {
            "language": "en", "beam_size": 1, "temperature": 0.0, "vad_filter": False,
            "condition_on_previous_text": False, "compression_ratio_threshold": None,
            "log_prob_threshold": None, "no_speech_threshold": None, "max_new_tokens": tokens,
        }  # fmt: skip
        list(fw.transcribe(str(warm), **kwargs)[0])
        steps, encoded = [0], [0]
        real_encode = fw.encode

        def encode(features: Any, *args: Any, **kw: Any) -> Any:
            encoded[0] += features.shape[0] if features.ndim == 3 else 1
            return real_encode(features, *args, **kw)

        fw.encode = encode  # type: ignore[method-assign]

        def run(path: Path) -> int:
            segments = list(fw.transcribe(str(path), **kwargs)[0])
            steps[0] = sum(len(s.tokens) for s in segments)
            return len(segments)

    if counter is not None:
        counter.reset()
    result["rss_loaded"] = rss()
    start = time.perf_counter()
    result["segments"] = run(track)
    result["seconds"] = time.perf_counter() - start
    result["peak"] = high_water()
    if counter is not None:
        result["windows"], result["row_steps"] = counter.encoder, counter.decoder
    else:
        result["windows"], result["row_steps"] = encoded[0], steps[0]
    return result


def run_child(engine: str, model: Path, track: Path, warm: Path, batch: int, tokens: int) -> dict:
    command = [sys.executable, __file__, "--child", engine, str(model), str(track), str(warm)]
    command += ["--batch-size", str(batch), "--max-new-tokens", str(tokens)]
    out = subprocess.run(command, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["?"])[-1]
        return {"engine": engine, "error": tail}
    return json.loads(out.stdout.strip().splitlines()[-1])


def mb(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:.0f}"


def table(rows: list[dict], seconds: float) -> None:
    print(
        "| engine | seconds | x real time | windows | decoder row-steps | segments "
        "| RSS peak MB | growth MB |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    for r in rows:
        if "error" in r:
            print(f"| {r['engine']} | failed: {r['error']} |||||||")
            continue
        print(
            f"| {r['engine']} | {r['seconds']:.1f} | {seconds / r['seconds']:.0f} "
            f"| {r['windows'] if r['windows'] is not None else '-'} | {r['row_steps']} "
            f"| {r['segments']} | {mb(r['peak'])} | {mb(r['peak'] - r['rss_loaded'])} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--long", type=float, default=3600)
    parser.add_argument("--no-long", action="store_true")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--long-tokens", type=int, default=4)
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--long-engines", default=",".join(LONG_ENGINES))
    parser.add_argument("--child", nargs=4, metavar=("ENGINE", "MODEL", "TRACK", "WARM"))
    args = parser.parse_args()
    if args.child:
        engine, model, track, warm = args.child
        result = child(
            engine, Path(model), Path(track), Path(warm), args.batch_size, args.max_new_tokens
        )
        print(json.dumps(result))
        return

    model, converted = make_models()
    warm, track = make_track(30), make_track(args.seconds)
    engines = [e for e in args.engines.split(",") if e]
    long_engines = [e for e in args.long_engines.split(",") if e]
    for name in {*engines, *long_engines} - set(ENGINES):
        parser.error(f"unknown engine {name!r}; choose from {', '.join(ENGINES)}")
    try:
        import faster_whisper  # noqa: F401
    except ImportError:
        engines = [e for e in engines if not e.startswith("faster-whisper")]
        long_engines = [e for e in long_engines if not e.startswith("faster-whisper")]

    def model_for(engine: str) -> Path:
        return converted if engine.startswith("faster-whisper") else model

    print(
        f"# {args.seconds:g} s speech-like AAC track, random whisper-tiny-shaped Whisper, "
        f"batch {args.batch_size}, {args.max_new_tokens} new tokens per window, "
        f"{os.cpu_count()} CPUs\n"
    )
    rows = [
        run_child(e, model_for(e), track, warm, args.batch_size, args.max_new_tokens)
        for e in engines
    ]
    table(rows, args.seconds)
    if not args.no_long:
        long = make_track(args.long)
        print(f"\n# memory: {args.long:g} s track, {args.long_tokens} new tokens per window\n")
        rows = [
            run_child(e, model_for(e), long, warm, args.batch_size, args.long_tokens)
            for e in long_engines
        ]
        table(rows, args.long)
    print(f"\nreproduce: python benchmarks/transcribe.py {' '.join(sys.argv[1:])}".rstrip())


if __name__ == "__main__":
    main()
