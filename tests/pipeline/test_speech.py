"""Transcripts in the prompt, through every entry point: a tone-detecting transcriber (it hears
"beep" where a tone burst is, through the real audio reader) stands in for a speech model, so
the times and texts the prompt must hold are known."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import vidtt
from vidtt.errors import ConfigError, NoAudioError, OptionsError
from vidtt.pipeline.speech import NoAudioWarning, spread, trimmed
from vidtt.plugin_api import Segment, Transcriber, TranscriberOptions, Transcript
from vidtt.testing import make_video
from vidtt.testing.videos import make_audio

VIDTT = str(Path(sys.executable).with_name("vidtt"))
BURSTS = [(1.0, 0.5, 440.0), (3.0, 0.5, 660.0)]  # (at, seconds, hz)

TONE_PLUGIN = """
import numpy as np
from vidtt.plugin_api import Segment, Transcriber, Transcript, audio_windows, hookimpl

class Tones(Transcriber):
    name = "tones"
    calls = 0

    def transcribe(self, source, options, progress=None):
        type(self).calls += 1
        segments = []
        for window in audio_windows(source, start=options.start, end=options.end, window=1.0):
            blocks = window.samples[: len(window.samples) // 1600 * 1600].reshape(-1, 1600)
            for k, block in enumerate(blocks):
                if float(np.sqrt((block**2).mean())) > 0.1:
                    at = window.start + k * 0.1
                    if segments and at - segments[-1][1] < 0.15:
                        segments[-1][1] = at + 0.1
                    else:
                        segments.append([at, at + 0.1])
            if progress:
                progress(window.end, None)
        said = [Segment(start=a, end=b, text="beep") for a, b in segments]
        return Transcript(segments=said, language=options.language or "en", transcriber=self.name)

@hookimpl
def register_transcribers(register):
    register(Tones())
"""


def _tones() -> type[Transcriber]:
    scope: dict[str, Any] = {}
    exec(TONE_PLUGIN, scope)
    return scope["Tones"]  # type: ignore[no-any-return]


Tones = _tones()


@pytest.fixture(scope="module")
def talking(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 s of video with tone bursts at 1.0-1.5 s and 3.0-3.5 s."""
    return make_audio(
        tmp_path_factory.mktemp("speech") / "talking.mp4", BURSTS, seconds=4.0, video=4.0
    )


@pytest.fixture(scope="module")
def silent_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("speech") / "silent.mp4", frames=48)


@pytest.fixture
def tones() -> Any:
    with vidtt.registry.temporary(Tones) as entries:
        Tones.calls = 0
        yield entries[0].obj


def speech_pipeline(folder: Path, **settings: Any) -> vidtt.Pipeline:
    return vidtt.Pipeline(
        model=str(folder),
        backend="cpu",
        dtype="float32",
        sampler_options={"num_frames": 4},
        generation={"max_new_tokens": 4},
        transcriber="tones",
        **settings,
    )


def prompt_text(pipe: vidtt.Pipeline, prepared: Any) -> str:
    inputs = pipe.formatter.build_inputs(
        [prepared.conversation], pipe.processor, timestamps=prepared.timestamps
    )
    return str(pipe.processor.tokenizer.decode(inputs["input_ids"][0]))


def starts(transcript: Transcript | None) -> list[float]:
    assert transcript is not None
    return [s.start for s in transcript.segments]


# -- the transcript's times and the prompt ---------------------------------------------------
@pytest.mark.parametrize("family", ["llava_dir", "qwen_dir"])
def test_transcript_lines_stand_beside_the_frames(family, request, tones, talking) -> None:
    pipe = speech_pipeline(request.getfixturevalue(family))
    request = {"videos": [str(talking)], "question": "What is said?", "transcript": "on"}
    prepared = pipe.prepare(request)
    clip = prepared.conversation[0].content[0].video
    assert starts(clip.transcript) == pytest.approx([1.0, 3.0], abs=0.1)  # the tones' times
    assert prepared.timestamps  # frame times on, to tie what is said to what is shown
    text = prompt_text(pipe, prepared)
    assert "Transcript of video 1" in text
    assert "[0:01-0:01] beep" in text and "[0:03-0:03] beep" in text
    frames = text.index("frames at")  # the frame times come before the transcript
    assert frames < text.index("Transcript of video 1") < text.index("What is said?")


def test_answer_carries_the_segments_and_times_follow_start(llava_dir, tones, talking) -> None:
    pipe = speech_pipeline(llava_dir, transcript="on")
    answer = pipe.batch([{"video": str(talking), "question": "What is said?", "start": 2.0}])[0]
    used = answer.videos[0]
    assert starts(used.transcript) == pytest.approx([3.0], abs=0.1)  # on the frames' clock
    assert min(used.timestamps) >= 2.0
    assert used.transcript.transcriber == "tones" and used.warnings == []


def test_a_video_is_transcribed_once_for_many_questions(llava_dir, tones, talking) -> None:
    pipe = speech_pipeline(llava_dir, transcript=True)
    for question in ("Who speaks?", "What is said?"):
        assert pipe.ask(talking, question).videos[0].transcript is not None
    assert Tones.calls == 1
    pipe.batch([{"video": str(talking), "question": "Later?", "start": 2.0}])  # heard again
    assert Tones.calls == 2


def test_a_video_without_audio_is_answered_with_a_warning(llava_dir, tones, silent_video) -> None:
    pipe = speech_pipeline(llava_dir)
    with pytest.warns(NoAudioWarning, match="video 1 .*silent.mp4.* has no transcript"):
        answer = pipe.ask(silent_video, "What is said?", transcript=True)
    assert answer.text is not None and answer.videos[0].transcript is None
    assert any("no transcript" in w for w in answer.videos[0].warnings)
    with pytest.raises(NoAudioError, match=r"video 1 \(.*silent.mp4\): no transcript: .*required"):
        pipe.ask(silent_video, "What is said?", transcript="required")


def test_frames_given_directly_have_no_transcript(llava_dir, tones) -> None:
    pipe = speech_pipeline(llava_dir)
    frames = np.zeros((4, 32, 32, 3), np.uint8)
    with pytest.warns(NoAudioWarning, match="frames given directly"):
        answer = pipe.ask(frames, "Said?", transcript="on")
    assert answer.videos[0].transcript is None


def test_transcript_off_never_reads_the_transcriber(llava_dir, talking) -> None:
    pipe = vidtt.Pipeline(model=str(llava_dir), backend="cpu", sampler_options={"num_frames": 2})
    prepared = pipe.prepare({"videos": [str(talking)], "question": "What?"})
    assert pipe._speech is None  # the transcriber was never even looked up
    assert prepared.conversation[0].content[0].video.transcript is None
    assert "Transcript" not in prompt_text(pipe, prepared)


# -- the cap on transcript tokens ------------------------------------------------------------
def test_the_cap_trims_evenly_and_says_so(llava_dir, tones, talking) -> None:
    pipe = speech_pipeline(llava_dir, transcript="on", max_transcript_tokens=20)
    used = pipe.ask(talking, "What is said?").videos[0]
    assert len(used.transcript.segments) == 1
    assert "max_transcript_tokens=20" in used.transcript.trimmed


def test_trimming_keeps_the_first_and_last_segments() -> None:
    said = Transcript(segments=[Segment(start=i, end=i + 1, text="word") for i in range(10)])
    kept = trimmed(said, 3 * 5, lambda lines: [5] * len(lines), "a cap of 15")
    assert [s.start for s in kept.segments] == [0, 4, 9]
    assert kept.trimmed.startswith("3 of 10 segments kept")
    assert trimmed(said, 50, lambda lines: [5] * len(lines), "x") is said
    assert spread(10, 1) == [0] and spread(10, 0) == [] and spread(3, 3) == [0, 1, 2]


def test_fit_context_counts_the_transcript(llava_dir, tones, talking) -> None:
    pipe = speech_pipeline(llava_dir, fit="context")
    without = pipe.prepare({"videos": [str(talking)], "question": "What is said?"})
    heard = pipe.prepare(
        {"videos": [str(talking)], "question": "What is said?", "transcript": "on"}
    )
    plan = [p.conversation[0].content[0].video.metadata["budget"] for p in (without, heard)]
    assert plan[1]["limit"] < plan[0]["limit"]  # the transcript's tokens left less for frames


# -- options and mistakes --------------------------------------------------------------------
def test_request_and_config_spell_the_mode_one_way(llava_dir) -> None:
    from vidtt.pipeline.request import parse_request

    assert (
        parse_request({"videos": ["a.mp4"], "question": "q", "transcript": True}).transcript == "on"
    )
    assert vidtt.PipelineConfig(transcript="Required").transcript == "required"
    with pytest.raises(OptionsError, match="transcript"):
        parse_request({"videos": ["a.mp4"], "question": "q", "transcript": "maybe"})
    with pytest.raises(ConfigError, match="unknown transcriber 'nope'; known transcribers"):
        vidtt.PipelineConfig(transcript="on", transcriber="nope").check()


def test_bad_transcriber_options_are_named(tones) -> None:
    config = vidtt.PipelineConfig(transcriber="tones", transcriber_options={"languag": "en"})
    with pytest.raises(ConfigError, match=r"transcriber 'tones': languag: unknown option"):
        config.check()


def test_transcriber_options_reach_the_transcriber(llava_dir, tones, talking) -> None:
    pipe = speech_pipeline(llava_dir, transcript="on", transcriber_options={"language": "de"})
    assert pipe.ask(talking, "Said?").videos[0].transcript.language == "de"
    assert pipe.speech.values["device"] == "cpu" and pipe.speech.values["dtype"] == "float32"


def test_transcriber_options_model_is_checked() -> None:
    with pytest.raises(Exception, match="end .* must be after start"):
        TranscriberOptions(start=3, end=2)
    with pytest.raises(Exception, match="dtype must be one of"):
        TranscriberOptions(dtype="int8")


# -- the command line ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tone_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tone transcriber installed as a third-party plugin distribution."""
    site = tmp_path_factory.mktemp("tone-site")
    (site / "vidtt_tones.py").write_text(textwrap.dedent(TONE_PLUGIN))
    info = site / "vidtt_tones-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vidtt-tones\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[vidtt]\ntones = vidtt_tones\n")
    return site


def vidtt_cli(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run(
        [VIDTT, *args], capture_output=True, text=True, timeout=180, env=env, check=False
    )


@pytest.mark.parametrize("fmt", ["text", "srt", "vtt", "json"])
def test_transcribe_command_writes_each_format(tone_site, talking, fmt) -> None:
    out = vidtt_cli(tone_site, "transcribe", str(talking), "--transcriber", "tones", "-f", fmt)
    assert out.returncode == 0, out.stderr
    if fmt == "text":
        assert out.stdout == "[0:01-0:01] beep\n[0:03-0:03] beep\n"
    elif fmt == "srt":
        assert out.stdout.startswith("1\n00:00:01,0") and "\n2\n00:00:03,0" in out.stdout
    elif fmt == "vtt":
        assert out.stdout.startswith("WEBVTT\n\n00:00:01.0")
    else:
        segments = json.loads(out.stdout)["segments"]
        assert [round(s["start"]) for s in segments] == [1, 3]


def test_transcribe_command_output_suffix_and_errors(tone_site, talking, tmp_path) -> None:
    target = tmp_path / "said.srt"
    out = vidtt_cli(
        tone_site,
        "transcribe",
        str(talking),
        "--transcriber",
        "tones",
        "--output",
        str(target),
        "--start",
        "2",
    )
    assert out.returncode == 0, out.stderr
    assert target.read_text().startswith("1\n00:00:03,0")
    missing = vidtt_cli(
        tone_site, "transcribe", str(tmp_path / "gone.mp4"), "--transcriber", "tones"
    )
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "gone.mp4" in missing.stderr and "not found" in missing.stderr
    unknown = vidtt_cli(tone_site, "transcribe", str(talking), "--transcriber", "tonez")
    assert unknown.returncode == 2 and "unknown transcriber 'tonez'" in unknown.stderr


def test_ask_transcript_flag_reaches_the_prompt(tone_site, talking, llava_dir) -> None:
    out = vidtt_cli(
        tone_site,
        "ask",
        str(talking),
        "-q",
        "What is said?",
        "--model",
        str(llava_dir),
        "--transcript",
        "--transcriber",
        "tones",
        "--frames",
        "2",
        "--max-new-tokens",
        "2",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    used = json.loads(out.stdout)["videos"][0]
    assert [round(s["start"]) for s in used["transcript"]["segments"]] == [1, 3]


def test_ask_required_transcript_without_audio_is_one_line(
    tone_site, silent_video, llava_dir
) -> None:
    out = vidtt_cli(
        tone_site,
        "ask",
        str(silent_video),
        "-q",
        "Said?",
        "--model",
        str(llava_dir),
        "--transcript",
        "required",
        "--transcriber",
        "tones",
        "--max-new-tokens",
        "2",
    )
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "no transcript" in out.stderr and "required" in out.stderr


# -- the server ------------------------------------------------------------------------------
def test_serve_takes_a_transcript_field(llava, tones, talking) -> None:
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("uvicorn")
    from serving import serving

    pipe = vidtt.Pipeline(
        model=llava.config.model,
        engine=llava.engine,
        sampler_options={"num_frames": 2},
        generation={"max_new_tokens": 2},
        transcriber="tones",
    )
    content = [{"type": "video_url", "video_url": {"url": f"file://{talking}"}}]
    body = {
        "messages": [{"role": "user", "content": [*content, {"type": "text", "text": "Said?"}]}]
    }
    from vidtt.serve.protocol import ServeLimits

    allowed = ServeLimits(allowed_local_media_path=talking.parent.resolve())
    with serving(pipe, limits=allowed) as (base, _):
        heard = httpx.post(
            f"{base}/v1/chat/completions", json={**body, "transcript": "on"}, timeout=60
        )
        plain = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=60)
        bad = httpx.post(
            f"{base}/v1/chat/completions", json={**body, "transcript": "loud"}, timeout=60
        )
    assert heard.status_code == 200, heard.text
    used = heard.json()["vidtt"]["videos"][0]
    assert [round(s["start"]) for s in used["transcript"]["segments"]] == [1, 3]
    assert plain.status_code == 200 and plain.json()["vidtt"]["videos"][0]["transcript"] is None
    assert bad.status_code == 400 and "transcript" in bad.json()["error"]["message"]


def test_run_hears_each_request_that_asks(tone_site, talking, llava_dir, tmp_path) -> None:
    requests = tmp_path / "requests.jsonl"
    lines = [
        {"id": "heard", "video": str(talking), "question": "Said?", "transcript": "on"},
        {"id": "plain", "video": str(talking), "question": "Shown?"},
    ]
    requests.write_text("".join(json.dumps(line) + "\n" for line in lines))
    output = tmp_path / "answers.jsonl"
    out = vidtt_cli(
        tone_site, "run", "--input", str(requests), "--output", str(output), "--model",
        str(llava_dir), "--transcriber", "tones", "--frames", "2", "--max-new-tokens", "2",
        "--quiet",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    records = {r["id"]: r for r in map(json.loads, output.read_text().splitlines())}
    heard = records["heard"]["videos"][0]["transcript"]
    assert [round(s["start"]) for s in heard["segments"]] == [1, 3]
    assert records["plain"]["videos"][0]["transcript"] is None


def test_chat_without_audio_warns_once_and_answers(tone_site, silent_video, llava_dir) -> None:
    env = {**os.environ, "PYTHONPATH": str(tone_site)}
    out = subprocess.run(
        [VIDTT, "chat", str(silent_video), "--model", str(llava_dir), "--transcript",
         "--transcriber", "tones", "--frames", "2", "--max-new-tokens", "2"],
        input="What is said?\n", capture_output=True, text=True, timeout=180, env=env,
        check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    warned = [line for line in out.stderr.splitlines() if "has no transcript" in line]
    assert len(warned) == 1 and warned[0].startswith("vidtt: warning: video 1")


# -- the built-in whisper transcriber, end to end ---------------------------------------------
@pytest.fixture(scope="module")
def whisper_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from vidtt.testing.speech import make_tiny_whisper

    return make_tiny_whisper(tmp_path_factory.mktemp("whisper"), favour="de")


def test_whisper_transcripts_reach_the_answer(llava_dir, whisper_dir, talking) -> None:
    pipe = vidtt.Pipeline(
        model=str(llava_dir),
        backend="cpu",
        sampler_options={"num_frames": 2},
        generation={"max_new_tokens": 2},
        transcript="on",
        transcriber_options={"model": str(whisper_dir), "max_new_tokens": 8, "window": 2.0,
                             "overlap": 0.5},
    )  # fmt: skip
    used = pipe.ask(talking, "What is said?").videos[0]
    assert used.transcript is not None and used.transcript.transcriber == "whisper"
    assert used.transcript.language == "de"  # the tiny model was made to detect German
    for segment in used.transcript.segments:  # random weights: any text, but within the video
        assert 0.0 <= segment.start <= segment.end <= 4.0 + 1e-6


def test_transcribe_command_with_whisper(whisper_dir, talking, tmp_path) -> None:
    target = tmp_path / "said.json"
    out = subprocess.run(
        [VIDTT, "transcribe", str(talking), "--output", str(target), "--backend", "cpu",
         "--transcriber-option", f"model={whisper_dir}", "--transcriber-option",
         "max_new_tokens=8", "--language", "fr"],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    said = json.loads(target.read_text())
    assert said["transcriber"] == "whisper" and said["language"] == "fr"
    bad = subprocess.run(
        [VIDTT, "transcribe", str(talking), "--transcriber-option", "window=60"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "window" in bad.stderr


def test_ray_sampling_actor_hears_with_its_stub_engine(llava_dir, tones, talking) -> None:
    """`vidtt run --ray`: the sampling actor (a processor with no weights and no dtype)
    transcribes, and the transcript travels to the generating actor in the pickled request."""
    pa = pytest.importorskip("pyarrow")
    import pickle

    from vidtt.jobs.ray_actors import GenerateActor, SampleActor
    from vidtt.pipeline.request import parse_request

    settings = {"model": str(llava_dir), "backend": "cpu", "transcriber": "tones",
                "transcript": "on", "sampler_options": {"num_frames": 2},
                "generation": {"max_new_tokens": 2}}  # fmt: skip
    request = parse_request({"video": str(talking), "question": "Said?"})
    rows = pa.table({"key": [0], "id": ['"q"'], "request": [request.model_dump_json()]})
    sampled = SampleActor(settings, False)(rows)
    assert sampled.column("error").to_pylist() == [""]
    prepared = pickle.loads(sampled.column("prepared")[0].as_py())
    clip = prepared.conversation[0].content[0].video
    assert starts(clip.transcript) == pytest.approx([1.0, 3.0], abs=0.1) and clip.origin is None
    records = GenerateActor(settings, gpu=False)(sampled).column("record").to_pylist()
    used = json.loads(records[0])["videos"][0]
    assert [round(s["start"]) for s in used["transcript"]["segments"]] == [1, 3]
