"""One request path: a request resolved once, every strategy inside the same media context
(the config's limits, download reuse, the frame cache)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
from commands import in_process
from serving import QuietFiles, http_server

import vidtt
from vidtt import limits
from vidtt.errors import LimitError, SourceError
from vidtt.pipeline.notes import MemoryStore
from vidtt.pipeline.request import parse_line
from vidtt.serve.protocol import ServeLimits, build_request, parse_chat
from vidtt.testing import make_video

pytestmark = pytest.mark.usefixtures("cache_dir")
SEGMENTS = {"min_segment": 2, "max_segments": 6, "shots": False, "note_tokens": 4, "batch_size": 2}


@pytest.fixture(scope="module")
def clip12(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("path") / "twelve.mp4", frames=120, fps=10)


class Counted(QuietFiles):
    """Files over http, each request counted by path."""

    counts: dict[str, int]

    def do_GET(self) -> None:
        self.counts[self.path] = self.counts.get(self.path, 0) + 1
        super().do_GET()


@pytest.fixture()
def served(clip12: Path) -> Any:
    counts: dict[str, int] = {}
    handler = type("Handler", (Counted,), {"counts": counts})
    with http_server(functools.partial(handler, directory=str(clip12.parent))) as base:
        yield f"{base}/{clip12.name}", counts


def pipeline(model: Path, **config: Any) -> Any:
    settings = {"sampler_options": {"num_frames": 4}, "generation": {"max_new_tokens": 4}}
    pipe = vidtt.Pipeline(
        model=str(model), backend="cpu", dtype="float32", **{**settings, **config}
    )
    pipe.note_store = MemoryStore()
    return pipe


def test_long_over_http_is_downloaded_once_with_the_configs_limits(
    llava_dir: Path, served: Any
) -> None:
    """The config allows 127.0.0.1; the probe, every batch of notes and the refine pass read
    one download."""
    url, counts = served
    pipe = pipeline(llava_dir, limits={"block_private_addresses": False})
    options = {**SEGMENTS, "refine": True, "refine_frames": 2}
    answer = pipe.ask(url, "What happens?", strategy="segments", segment_options=options)
    assert len(answer.segments) == 6  # 3 batches of notes, then the final prompt
    assert counts == {"/twelve.mp4": 1}
    pipe.ask(url, "What happens?", strategy="direct")  # a plain ask: its own one download
    assert counts == {"/twelve.mp4": 2}


def test_long_command_takes_the_configs_limits(
    llava_dir: Path, served: Any, tmp_path: Path
) -> None:
    """`vidtt ask --long` with a config that allows private addresses fetches the video
    (it was refused on --long only), once."""
    url, counts = served
    config = tmp_path / "pipeline.json"
    config.write_text(
        json.dumps(
            {
                "model": str(llava_dir),
                "backend": "cpu",
                "dtype": "float32",
                "limits": {"block_private_addresses": False},
                "segment_options": SEGMENTS,
            }
        )
    )
    done = in_process("ask", url, "-q", "What?", "--long", "--json", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["segments"]) == 6
    assert counts == {"/twelve.mp4": 1}


@pytest.mark.parametrize("strategy", ["direct", "segments"])
def test_a_config_limit_stops_every_strategy(
    llava_dir: Path, clip12: Path, served: Any, strategy: str
) -> None:
    url, counts = served
    small = pipeline(llava_dir, limits={"max_pixels": 100})
    with pytest.raises(LimitError, match="max_pixels"):
        small.ask(str(clip12), "What?", strategy=strategy, segment_options=SEGMENTS)
    guarded = pipeline(llava_dir)  # private addresses refused by default, for notes too
    with pytest.raises(SourceError, match="private"):
        guarded.ask(url, "What?", strategy=strategy, segment_options=SEGMENTS)
    assert counts == {}


def test_a_config_limits_block_keeps_the_environments_other_limits(
    llava_dir: Path, clip12: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`limits: {max_pixels: ...}` changes max_pixels only: VIDTT_LIMIT_MAX_FRAMES stays."""
    monkeypatch.setenv("VIDTT_LIMIT_MAX_FRAMES", "3")
    monkeypatch.setattr(limits, "_process_default", None)
    with pytest.raises(vidtt.ConfigError, match="num_frames=4 is over the limit of 3 frames"):
        pipeline(llava_dir, limits={"max_pixels": 4096 * 4096})
    config = vidtt.PipelineConfig.model_validate({"limits": {"max_pixels": 4096 * 4096}})
    with limits.use(config.limits) as chosen:
        assert (chosen.max_frames, chosen.max_pixels) == (3, 4096 * 4096)
        with pytest.raises(LimitError, match="over the limit of 3"):
            vidtt.sample(str(clip12), num_frames=8)


def test_every_entry_resolves_a_request_alike(llava_dir: Path, clip12: Path) -> None:
    """The same fields from Python, a `vidtt run` line and a chat completion resolve to the
    same strategy, sampler, options, generation, transcript cap and segment options."""
    pipe = pipeline(llava_dir, strategy="segments", fit="context")
    fields = {
        "videos": [str(clip12)],
        "question": "When does it change?",
        "fps": 2,
        "max_new_tokens": 3,
        "segment_options": {"min_segment": 4},
    }
    python = pipe.resolve(fields)
    _, line = parse_line(json.dumps(fields), 1)
    chat = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "video_url", "video_url": {"url": str(clip12)}},
                    {"type": "text", "text": fields["question"]},
                ],
            }
        ],
        "max_tokens": 3,
        "fps": 2,
        "segment_options": {"min_segment": 4},
    }
    served_limits = ServeLimits(allowed_local_media_path=clip12.parent.resolve())
    served = pipe.resolve(build_request(parse_chat(chat, served_limits), served_limits))
    for resolved in (pipe.resolve(line), served):
        assert resolved.strategy == python.strategy == "segments"
        assert resolved.sampler.name == python.sampler.name
        assert resolved.sampler_options == python.sampler_options
        assert resolved.generation.max_new_tokens == python.generation.max_new_tokens == 3
        assert (resolved.transcript_cap, resolved.segments) == (
            python.transcript_cap,
            python.segments,
        )
    assert python.segments.min_segment == 4 and python.sampler_options.fps == 2


def test_flags_and_request_fields_lie_over_a_config_by_one_rule(
    llava_dir: Path, clip12: Path, tmp_path: Path
) -> None:
    """A rate given (`--every`, `"every"`) replaces the config's rate and keeps its cap on the
    frames (`max_frames`); a count given replaces both."""
    config = {"sampler": "interval", "sampler_options": {"every": 1, "max_frames": 4}}
    path = tmp_path / "sampling.json"
    path.write_text(json.dumps(config))
    flags = in_process("sample", str(clip12), "--config", str(path), "--every", "0.5", "--json")
    assert flags.returncode == 0, flags.stderr
    shown = json.loads(flags.stdout)
    frames = (shown[0] if isinstance(shown, list) else shown)["frames"]
    pipe = pipeline(llava_dir, **config)
    fields = {"videos": [str(clip12)], "question": "What?"}
    rate = pipe.resolve({**fields, "every": 0.5}).sampler_options
    assert (rate.every, rate.max_frames, len(frames)) == (0.5, 4, 4)
    cap = pipe.resolve({**fields, "max_frames": 6}).sampler_options
    assert (cap.every, cap.max_frames) == (1, 6)
    count = pipe.resolve({**fields, "num_frames": 6})
    assert (count.sampler.name, count.sampler_options.num_frames) == ("uniform", 6)


def test_a_prompt_too_long_is_refused_before_the_model_loads(tmp_path: Path, clip12: Path) -> None:
    """`vidtt ask` says the prompt does not fit from the checkpoint's config and processor:
    its weights are never read (here they cannot be), and the one line names the options."""
    from tiny_models import make_llava

    folder = make_llava(tmp_path / "small", context=100)
    for weights in folder.glob("*.safetensors"):
        weights.write_bytes(b"not weights")
    done = in_process(
        "ask", str(clip12), "-q", "What?", "--model", str(folder), "--frames", "8",
        "--backend", "cpu", "--max-new-tokens", "10",
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    line = done.stderr.strip()
    assert "\n" not in line and "context is 100" in line and "--fit-context" in line, line


def test_watch_flags_lie_over_a_configs_watch_block(tmp_path: Path) -> None:
    """`vidtt watch` flags reach the config as every flag does: over its `watch` block."""
    from vidtt.cli.app import build_parser
    from vidtt.cli.settings import command_settings

    path = tmp_path / "watch.json"
    path.write_text(json.dumps({"watch": {"every": 7, "window": 3, "yes_no": True}}))
    argv = ["watch", "rtsp://cam/1", "-q", "Who?", "--config", str(path), "--window", "2"]
    args = build_parser().parse_args([*argv, "--every", "4", "--max-events", "1"])
    watch = command_settings(args, None, args.question, ask=True).config.watch
    assert (watch.every, watch.window, watch.yes_no, watch.max_events) == (4, 2, True, 1)
    args = build_parser().parse_args(argv)
    watch = command_settings(args, None, args.question, ask=True).config.watch
    assert (watch.every, watch.window, watch.max_events) == (7, 2, None)
