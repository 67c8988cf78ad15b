"""The `vidtt` subcommands that sample videos and run models: ask, chat, sample, run, demo.

Each checks everything that needs no model first (config, options, question, local videos) and
samples the videos, and only then loads the model.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from vidtt.cli.interrupt import make_cancellable
from vidtt.cli.options import config_from_args
from vidtt.config import PipelineConfig, join_problems, load_config
from vidtt.errors import ConfigError, OptionsError
from vidtt.pipeline.preflight import preflight, question_problems, sample_videos, video_problems
from vidtt.settings.resolve import Settings
from vidtt.types import Clip

SHEET_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def command_config(args: argparse.Namespace, config_file: str | None = None) -> PipelineConfig:
    """The `--config` file (or the defaults) with the command-line options on top."""
    return command_settings_unchecked(args, config_file).config


def command_settings_unchecked(
    args: argparse.Namespace, config_file: str | None = None
) -> Settings:
    """The config file read once, its registry built once, the command line laid over it."""
    path = config_file or getattr(args, "config", None)
    base = load_config(path, check_names=False) if path else PipelineConfig()
    registry = base.registry()
    return Settings(config_from_args(args, base, registry), registry)


def build_pipeline(settings: Settings | PipelineConfig, processor: Any = None) -> Any:
    """Load the model (the slow part) with generation that Ctrl-C can stop."""
    from vidtt.pipeline.core import Pipeline

    pipe = Pipeline(settings, processor=processor)
    make_cancellable(pipe.model)
    return pipe


def command_settings(
    args: argparse.Namespace, videos: Any = None, question: Any = None, ask: bool = False
) -> Settings:
    """The command's settings, resolved once, after every check that needs no model: the
    config's problems, the videos' and the question's are reported in one line."""
    try:
        settings = command_settings_unchecked(args)
    except ConfigError as exc:  # report the other problems in the same line
        found: list[Exception] = [exc, *video_problems(videos)] if videos is not None else [exc]
        found += question_problems(question) if ask else []
        raise ConfigError(join_problems([str(e) for e in found])) from None
    preflight(settings.config, settings.registry, videos, question, ask=ask)
    return settings.with_user_rule()


def with_frame_rule(settings: Settings) -> tuple[Settings, Any]:
    """The settings with the model's frame rule, and the processor read for it (loaded once,
    then handed to the model's load; None when the user's options decide the rule alone)."""
    if not settings.needs_video_processor:
        return settings, None
    from vidtt.engine.loading import load_processor

    processor = load_processor(settings.config)
    return settings.with_video_processor(getattr(processor, "video_processor", None)), processor


def prepared(args: argparse.Namespace, question: Any = None, ask: bool = True) -> tuple[Any, list]:
    """Check, sample the videos, then load: the pipeline and the sampled clips."""
    settings = command_settings(args, args.videos, question, ask=ask)
    settings, processor = with_frame_rule(settings)
    if settings.config.max_visual_tokens or settings.config.fit:  # planned with the processor
        return build_pipeline(settings, processor), list(args.videos)
    clips = sample_videos(settings, args.videos)
    return build_pipeline(settings, processor), clips


def print_stream(stream: Any) -> None:
    for piece in stream:
        print(piece, end="", flush=True)
    print(flush=True)


def cmd_ask(args: argparse.Namespace) -> int:
    pipe, clips = prepared(args, args.question)
    videos = clips if len(clips) > 1 else clips[0]
    if args.stream:
        stream = pipe.ask(videos, args.question, stream=True, timestamps=args.timestamps)
        print_stream(stream)
        if args.json:
            print(stream.answer.model_dump_json(indent=2))
        return 0
    answer = pipe.ask(videos, args.question, timestamps=args.timestamps)
    print(answer.model_dump_json(indent=2) if args.json else answer.text)
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    pipe, clips = prepared(args, ask=False)
    interactive = sys.stdin.isatty()
    read = terminal_reader() if interactive else piped_reader()
    if interactive and all(isinstance(c, Clip) for c in clips):
        times = "; ".join(", ".join(f"{t:.1f}" for t in c.timestamps) for c in clips)
        print(
            f"vidtt: {len(clips)} video(s) sampled (frames at {times} s). "
            "Ask away; an empty line or Ctrl-D ends.",
            file=sys.stderr,
        )
    messages: list[dict[str, Any]] = []
    while (line := read()) is not None:
        if not line:
            if interactive:
                return 0
            continue
        messages.append(user_turn(line, clips if not messages else []))
        stream = pipe.chat(messages, stream=True, timestamps=args.timestamps)
        print_stream(stream)
        messages.append({"role": "assistant", "content": stream.answer.text})
    return 0


def user_turn(text: str, clips: list[Any]) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "video", "video": c} for c in clips]
    return {"role": "user", "content": [*content, {"type": "text", "text": text}]}


def piped_reader() -> Any:
    """Lines from a pipe, stripped; None at the end or on `exit`/`quit`."""

    def read() -> str | None:
        line = sys.stdin.readline()
        return None if not line or line.strip() in ("exit", "quit") else line.strip()

    return read


def terminal_reader() -> Any:
    """Lines typed at a terminal with readline editing and a history kept across sessions."""
    history = history_file()
    try:
        import readline
    except ImportError:  # e.g. Windows without pyreadline
        readline = None  # type: ignore[assignment]
    if readline is not None:
        readline.set_history_length(1000)
        with contextlib.suppress(OSError):
            readline.read_history_file(history)

    def read() -> str | None:
        try:
            line = input("you> ")
        except EOFError:
            print(file=sys.stderr)
            return None
        if readline is not None and line.strip():
            try:
                history.parent.mkdir(parents=True, exist_ok=True)
                readline.write_history_file(history)
            except OSError:
                pass
        return None if line.strip() in ("exit", "quit") else line.strip()

    return read


def history_file() -> Path:
    from vidtt.cli.demo import cache_dir

    return cache_dir() / "chat_history"


def check_outputs(args: argparse.Namespace) -> None:
    """Make the --out and --sheet folders, or fail before any sampling."""
    if args.sheet and not args.sheet.lower().endswith(SHEET_SUFFIXES):
        raise OptionsError(f"--sheet {args.sheet}: use a .png, .jpg or .webp file name")
    folders = [("--out", Path(args.out))] if args.out else []
    if args.sheet:
        folders.append(("--sheet", Path(args.sheet).expanduser().parent))
    for flag, folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OptionsError(
                f"{flag}: cannot create the folder {folder}: {exc.strerror or exc}"
            ) from None


def cmd_sample(args: argparse.Namespace) -> int:
    from vidtt.media.sheet import contact_sheet, write_frames

    check_outputs(args)
    settings = command_settings(args, [args.video])
    named_model = "model" in settings.config.model_fields_set
    settings, processor = with_frame_rule(settings) if named_model else (settings, None)
    rule, plan = (settings.rule if named_model else ""), None
    if args.explain:
        clip, plan = explained_clip(args, settings, processor)
        rule = plan["reason"]
        args.sheet = args.sheet or f"{Path(args.video).stem}-frames.png"
    else:
        [clip] = sample_videos(settings, [args.video])
    if args.out:
        write_frames(clip, Path(args.out))
    if args.sheet:
        contact_sheet(clip).save(args.sheet)
    if args.json:
        print(json.dumps({**clip_report(clip), "rule": rule, "plan": plan}, indent=2))
        return 0
    print_clip(args.video, clip)
    if rule:
        print(f"frames chosen by: {rule}")
    if args.explain:
        print(f"contact sheet: {args.sheet}")
    return 0


def explained_clip(args: argparse.Namespace, settings: Settings, processor: Any) -> tuple:
    """The clip the model's pipeline would sample (its budget applied), and the plan."""
    from vidtt import limits
    from vidtt.budget.explain import describe, plan_sampling
    from vidtt.media.sample import sample_video

    if "model" not in settings.config.model_fields_set:
        raise OptionsError("--explain: name the model with --model (or a config file's model)")
    options, plan, processor, formatter = plan_sampling(settings, args.video, processor)
    rule = f"the visual-token budget: {plan.reason}" if plan else settings.rule
    with limits.use(settings.config.limits):
        clip = sample_video(args.video, settings.sampler, options, rule=rule)
    return clip, describe(clip, plan, processor, formatter)


def clip_report(clip: Clip) -> dict[str, Any]:
    return {
        "video": clip.info.model_dump(),
        "sampler": clip.sampler,
        "frames": [{"index": i, "time": t} for i, t in zip(clip.indices, clip.timestamps)],
        "warnings": clip.warnings,
    }


def print_clip(video: str, clip: Clip) -> None:
    info = clip.info
    print(
        f"{video}: {info.width}x{info.height} {info.codec}, {info.frame_count} frames, "
        f"{info.duration or 0:.2f} s at {info.fps or 0:.2f} fps; {clip.sampler} took "
        f"{len(clip)} frames at {clip.width}x{clip.height}"
    )
    for index, time in zip(clip.indices, clip.timestamps):
        print(f"  frame {index:>7}  {time:>9.3f} s")
    for warning in clip.warnings:
        print(f"vidtt: warning: {warning}", file=sys.stderr)


def cmd_demo(args: argparse.Namespace) -> int:
    from vidtt.cli.demo import QUESTION, demo_assets, demo_paths
    from vidtt.pipeline.core import Pipeline

    video, model = demo_paths()
    if not (video.exists() and (model / "config.json").exists()):
        print(
            f"vidtt demo: making a sample video and a tiny model in {video.parent} (once) ...",
            file=sys.stderr,
        )
    video, model = demo_assets()
    pipe = Pipeline(
        model=str(model),
        backend=args.backend or "auto",
        sampler_options={"num_frames": 6},
        generation={"max_new_tokens": 16},
    )
    make_cancellable(pipe.model)
    answer = pipe.ask(video, QUESTION)
    times = ", ".join(f"{t:.2f}" for t in answer.videos[0].timestamps)
    t = answer.timings
    print(
        f"video:    {video}\nmodel:    {model}\nframes:   {times} s\n"
        f"question: {QUESTION}\nanswer:   {answer.text!r}\n"
        f"backend:  {answer.backend} ({answer.device}, {answer.dtype}), formatter "
        f"{answer.formatter}\ntimings:  sampling {t.sampling:.3f} s, preprocessing "
        f"{t.preprocessing:.3f} s, prefill {t.prefill:.3f} s, decode {t.decode:.3f} s\n\n"
        "The model has random weights, so the answer is gibberish: this run only shows the "
        'whole path working.\nFor a real answer: vidtt ask VIDEO -q "..." --model '
        "llava-hf/llava-interleave-qwen-0.5b-hf (or a local model folder).\n"
        f"The files stay in {video.parent} (VIDTT_CACHE moves it); delete it to start afresh."
    )
    return 0
