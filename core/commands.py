"""The `vidtt` subcommands that sample videos and run models: ask, chat, sample, run, demo."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .config import PipelineConfig, load_config
from .errors import OptionsError, VidttError

COUNT_OPTION = {"uniform": "num_frames", "keyframe": "max_frames", "interval": "max_frames"}


def sampler_choice(args: argparse.Namespace, base: PipelineConfig) -> tuple[str, dict[str, Any]]:
    """The sampler and its options from --sampler/--frames/--fps/--every/--size over `base`."""
    timed = getattr(args, "fps", None) or getattr(args, "every", None)
    name = args.sampler or ("interval" if timed else base.sampler)
    options = dict(base.sampler_options) if name == base.sampler else {}
    if args.frames is not None:
        options[COUNT_OPTION.get(name, "num_frames")] = args.frames
    if getattr(args, "fps", None):
        options["fps"] = args.fps
    if getattr(args, "every", None):
        options["every"] = args.every
    if args.size is not None:
        options["size"] = args.size
    for key in ("start", "end"):
        if getattr(args, key, None) is not None:
            options[key] = getattr(args, key)
    return name, options


def pipeline_config(args: argparse.Namespace) -> dict[str, Any]:
    """A config dict: the --config file (if any) with the command-line options on top."""
    base = load_config(args.config, check_names=False) if args.config else PipelineConfig()
    data = base.model_dump(exclude_unset=True)
    for key in ("model", "backend", "dtype"):
        if getattr(args, key, None):
            data[key] = getattr(args, key)
    data["sampler"], data["sampler_options"] = sampler_choice(args, base)
    if args.max_new_tokens is not None:
        data["generation"] = {
            **base.generation.model_dump(exclude_unset=True),
            "max_new_tokens": args.max_new_tokens,
        }
    return data


def make_pipeline(args: argparse.Namespace) -> Any:
    """The pipeline for `args`, after checking local videos exist (before the slow load)."""
    from .pipeline import Pipeline
    from .types import VideoSource

    for number, video in enumerate(args.videos, 1):
        source = VideoSource.of(video)
        if source.kind == "path":
            try:
                source.checked_path()
            except VidttError as exc:
                raise type(exc)(f"video {number} ({video}): {exc}") from None
    return Pipeline(pipeline_config(args))


def cmd_ask(args: argparse.Namespace) -> int:
    pipe = make_pipeline(args)
    videos = args.videos if len(args.videos) > 1 else args.videos[0]
    if args.stream:
        stream = pipe.ask(videos, args.question, stream=True)
        for piece in stream:
            print(piece, end="", flush=True)
        print()
        if args.json:
            print(stream.answer.model_dump_json(indent=2))
        return 0
    answer = pipe.ask(videos, args.question)
    print(answer.model_dump_json(indent=2) if args.json else answer.text)
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    pipe = make_pipeline(args)
    clips = [pipe.sample(video, n) for n, video in enumerate(args.videos, 1)]
    interactive = sys.stdin.isatty()
    if interactive:
        times = "; ".join(", ".join(f"{t:.1f}" for t in c.timestamps) for c in clips)
        print(
            f"vidtt: {len(clips)} video(s) sampled (frames at {times} s). "
            "Ask away; an empty line or Ctrl-D ends.",
            file=sys.stderr,
        )
    messages: list[dict[str, Any]] = []
    while True:
        if interactive:
            print("you> ", end="", file=sys.stderr, flush=True)
        line = sys.stdin.readline()
        if not line or (interactive and not line.strip()) or line.strip() in ("exit", "quit"):
            return 0
        if not line.strip():
            continue
        content: list[dict[str, Any]] = (
            [{"type": "video", "video": c} for c in clips] if not messages else []
        )
        messages.append(
            {"role": "user", "content": [*content, {"type": "text", "text": line.strip()}]}
        )
        stream = pipe.chat(messages, stream=True)
        for piece in stream:
            print(piece, end="", flush=True)
        print(flush=True)
        messages.append({"role": "assistant", "content": stream.answer.text})


def cmd_sample(args: argparse.Namespace) -> int:
    import vidtt

    from .sheet import contact_sheet, write_frames

    name, options = sampler_choice(args, PipelineConfig())
    clip = vidtt.sample(args.video, name, **options)
    if args.out:
        write_frames(clip, Path(args.out))
    if args.sheet:
        if not args.sheet.lower().endswith((".png", ".jpg", ".jpeg", ".webp")):
            raise OptionsError(f"--sheet {args.sheet}: use a .png, .jpg or .webp file name")
        contact_sheet(clip).save(args.sheet)
    if args.json:
        print(
            json.dumps(
                {
                    "video": clip.info.model_dump(),
                    "sampler": clip.sampler,
                    "frames": [
                        {"index": i, "time": t} for i, t in zip(clip.indices, clip.timestamps)
                    ],
                    "warnings": clip.warnings,
                },
                indent=2,
            )
        )
        return 0
    info = clip.info
    print(
        f"{args.video}: {info.width}x{info.height} {info.codec}, {info.frame_count} frames, "
        f"{info.duration or 0:.2f} s at {info.fps or 0:.2f} fps; {clip.sampler} took "
        f"{len(clip)} frames at {clip.frames[0].width}x{clip.frames[0].height}"
    )
    for index, time in zip(clip.indices, clip.timestamps):
        print(f"  frame {index:>7}  {time:>9.3f} s")
    for warning in clip.warnings:
        print(f"vidtt: warning: {warning}", file=sys.stderr)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .jobs import run_jobs
    from .pipeline import Pipeline

    pipe = Pipeline(args.config)
    answered, failed, skipped = run_jobs(pipe, Path(args.input), Path(args.output))
    print(
        f"vidtt: {answered} answered, {failed} failed, {skipped} already done; "
        f"answers in {args.output}",
        file=sys.stderr,
    )
    return 1 if failed else 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import QUESTION, demo_assets
    from .pipeline import Pipeline

    print("vidtt demo: making a sample video and a tiny model (once) ...", file=sys.stderr)
    video, model = demo_assets()
    pipe = Pipeline(
        model=str(model),
        backend=args.backend or "auto",
        sampler_options={"num_frames": 6},
        generation={"max_new_tokens": 16},
    )
    answer = pipe.ask(video, QUESTION)
    times = ", ".join(f"{t:.2f}" for t in answer.videos[0].timestamps)
    t = answer.timings
    print(
        f"video:    {video} (made on the spot)\nframes:   {times} s\n"
        f"question: {QUESTION}\nanswer:   {answer.text!r}\n"
        f"backend:  {answer.backend} ({answer.device}, {answer.dtype}), formatter "
        f"{answer.formatter}\ntimings:  sampling {t.sampling:.3f} s, preprocessing "
        f"{t.preprocessing:.3f} s, prefill {t.prefill:.3f} s, decode {t.decode:.3f} s\n\n"
        "The model has random weights, so the answer is gibberish: this run only shows the "
        'whole path working.\nFor a real answer: vidtt ask VIDEO -q "..." --model '
        "llava-hf/llava-interleave-qwen-0.5b-hf (or a local model folder)."
    )
    return 0
