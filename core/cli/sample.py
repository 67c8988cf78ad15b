"""`vidtt sample`: show which frames a model would see (and, with --explain, why)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from vidtt.cli.options import add_config_option, add_sampling_options, subcommand
from vidtt.cli.settings import command_settings
from vidtt.engine.loading import with_frame_rule
from vidtt.errors import OptionsError
from vidtt.pipeline.preflight import sample_videos
from vidtt.settings.resolve import Settings
from vidtt.types import Clip

SHEET_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
BOUNDARIES = {"start": "the range's start", "cut": "a cut", "gradual": "a fade or dissolve"}


def add_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    sample = subcommand(sub, "sample", "show which frames a model would see", common)
    sample.add_argument("video", metavar="VIDEO", help="video file path or http(s) URL")
    add_config_option(sample)
    add_sampling_options(sample, sample=True)
    sample.add_argument(
        "--model",
        help="sample as this model would by default (its video processor's frame rate or "
        "count; reads no weights) and say which rule chose the frames",
    )
    sample.add_argument("--out", metavar="DIR", help="write the frames as PNG files here")
    sample.add_argument(
        "--sheet", metavar="FILE.png", help="write a contact sheet (.png, .jpg or .webp)"
    )
    sample.add_argument("--json", action="store_true", help="print video info and frames")
    sample.add_argument(
        "--explain",
        action="store_true",
        help="with --model: print the frame plan (budget, tokens per frame, frames and size "
        "chosen, and why) without loading the model's weights",
    )
    sample.set_defaults(func=cmd_sample)
    return sample


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
    check_outputs(args)
    settings = command_settings(args, [args.video])
    named_model = "model" in settings.config.model_fields_set
    budget = bool(settings.config.max_visual_tokens or settings.config.fit)
    if budget and not named_model:
        raise OptionsError(
            "--max-visual-tokens and --fit-context (a config's max_visual_tokens, fit): a budget "
            "counts a model's tokens, so it needs --model (or a config's model)"
        )
    settings, processor = with_frame_rule(settings) if named_model else (settings, None)
    rule, plan = (settings.rule if named_model else ""), None
    if args.explain or budget:
        clip, plan = explained_clip(args, settings, processor)
        rule = plan["reason"] if args.explain else str(clip.metadata.get("frames_rule", rule))
        if args.explain:
            args.sheet = args.sheet or f"{Path(args.video).stem}-frames.png"
    else:
        [clip] = sample_videos(settings, [args.video])
    write_outputs(args, clip)
    if args.json:
        print(json.dumps({**clip_report(clip), "rule": rule, "plan": plan}, indent=2))
        return 0
    print_clip(args.video, clip)
    if rule:
        print(f"frames chosen by: {rule}")
    if args.explain:
        print(f"contact sheet: {args.sheet}")
    return 0


def write_outputs(args: argparse.Namespace, clip: Clip) -> None:
    """The frames (--out) and the contact sheet (--sheet), each file said on stderr."""
    from vidtt.media.sheet import contact_sheet, write_frames

    written = write_frames(clip, Path(args.out)) if args.out else []
    if args.sheet:
        contact_sheet(clip).save(args.sheet)
        written.append(Path(args.sheet))
    for path in written:
        print(f"vidtt: wrote {path}", file=sys.stderr)


def explained_clip(args: argparse.Namespace, settings: Settings, processor: Any) -> tuple:
    """The clip the model's pipeline would sample (its budget applied), and the plan."""

    from vidtt.budget.explain import describe, plan_sampling
    from vidtt.media.sample import media_context, sample_video

    if "model" not in settings.config.model_fields_set:
        raise OptionsError("--explain: name the model with --model (or a config file's model)")
    options, plan, processor, formatter = plan_sampling(settings, args.video, processor)
    rule = f"the visual-token budget: {plan.reason}" if plan else settings.rule
    with media_context(settings.config.limits):
        clip = sample_video(args.video, settings.sampler, options, rule=rule)
    return clip, describe(clip, plan, processor, formatter)


def clip_report(clip: Clip) -> dict[str, Any]:
    return {
        "video": clip.info.model_dump(),
        "sampler": clip.sampler,
        "frames": [{"index": i, "time": t} for i, t in zip(clip.indices, clip.timestamps)],
        "shots": [shot.model_dump() for shot in clip.shots],
        "warnings": clip.warnings,
    }


def print_clip(video: str, clip: Clip) -> None:
    info = clip.info
    print(
        f"{video}: {info.width}x{info.height} {info.codec}, {info.frame_count} frames, "
        f"{info.duration or 0:.2f} s at {info.fps or 0:.2f} fps; {clip.sampler} took "
        f"{len(clip)} frames at {clip.width}x{clip.height}"
    )
    if clip.shots:
        print_shots(clip)
    for index, time in zip(clip.indices, clip.timestamps) if not clip.shots else ():
        print(f"  frame {index:>7}  {time:>9.3f} s")
    for warning in clip.warnings:
        print(f"vidtt: warning: {warning}", file=sys.stderr)


def print_shots(clip: Clip) -> None:
    """Each shot (its times and frame range) with the frames taken from it."""
    print(f"{len(clip.shots)} shot(s):")
    for number, shot in enumerate(clip.shots, 1):
        print(
            f"  {shot.label(number)}  ({shot.start:.3f}-{shot.end:.3f} s, frames "
            f"{shot.first_frame}-{shot.end_frame - 1}, after {BOUNDARIES[shot.boundary]})"
        )
        for k in shot.frames:
            print(f"    frame {clip.indices[k]:>7}  {clip.timestamps[k]:>9.3f} s")
