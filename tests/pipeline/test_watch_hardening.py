"""`vidtt watch` and watch options under attack and as a newcomer meets them (issue 35): `when`
patterns matched in linear time (RE2), a tick interval too small refused, a finished MP4
played as a file, `--json` with `--yes-no` printing every answer, and a config whose frame
count is over its limit saying so."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import vidtt
from vidtt.errors import OptionsError
from vidtt.pipeline.watch import split_watch_fields
from vidtt.testing.videos import make_video
from vidtt.types.watch import WatchOptions

FPS = 10
EVIL = r"(?s)(.|.)*$x"  # Python's re: 2^n steps on an n-character answer; never matches


def test_a_when_pattern_is_matched_in_linear_time() -> None:
    options = WatchOptions(when=EVIL)
    started = time.monotonic()
    assert not options.matches("a long answer, " * 2)  # 30 characters: minutes for re
    assert not options.matches("x" * 200_000)
    assert time.monotonic() - started < 1.0
    assert WatchOptions(when="fail(ed|ure)").matches("The print FAILED")  # case-insensitive
    assert WatchOptions(when=r"\bdoor\b").matches("at the Door.")


@pytest.mark.parametrize(
    ("pattern", "said"),
    [
        (r"(?<=a)b", "RE2 syntax"),  # look-around: RE2 has none
        (r"(a)\1", "RE2 syntax"),  # back-references
        ("(unclosed", "not a regular expression"),
        ("a" * 1001, "at most 1000 characters"),
    ],
)
def test_a_when_pattern_re2_cannot_run_is_one_line_error(pattern: str, said: str) -> None:
    with pytest.raises(OptionsError, match="when") as caught:
        split_watch_fields({"when": pattern})
    assert said in str(caught.value) and "\n" not in str(caught.value)


def test_a_tick_interval_below_the_minimum_is_refused() -> None:
    for every in (1e-9, 0.001, 0.099):
        with pytest.raises(OptionsError, match=r"every: .*at most every 0\.1 s.*0\.1 or more"):
            split_watch_fields({"every": every})
    assert split_watch_fields({"every": 0.1})[0].every == 0.1


def test_a_frame_count_over_a_configs_limit_says_what_and_what_to_do(tmp_path: Path) -> None:
    config = tmp_path / "small.yaml"
    config.write_text("model: some/model\nlimits: {max_frames: 2}\n")
    with pytest.raises(vidtt.ConfigError) as caught:
        vidtt.load_config(config)
    said = str(caught.value)
    assert said.startswith(f"{config}: ") and "\n" not in said, said
    assert "num_frames=8 (the sampler's default) is over the limit of 2 frames" in said
    assert "sampler_options num_frames" in said and "raise limits max_frames" in said


# -- the command ----------------------------------------------------------------------------
def vidtt_command() -> list[str]:
    return [str(Path(sys.executable).with_name("vidtt"))]


def run_watch(source: Path, model: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*vidtt_command(), "watch", str(source), "-q", "What?", "--every", "0.5", "--window",
         "1", "--model", str(model), "--backend", "cpu", "--frames", "2",
         "--max-new-tokens", "2", *flags],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip


@pytest.mark.slow
def test_a_finished_mp4_is_played_as_a_file(llava_dir: Path, tmp_path: Path) -> None:
    video = make_video(tmp_path / "finished.mp4", frames=4 * FPS, fps=FPS, size=(160, 120))
    started = time.monotonic()
    done = run_watch(video, llava_dir, "--json")
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    answers = [e for e in events if e["kind"] == "answer"]
    assert len(answers) >= 3, events  # ticks over its 4 s, played at its own speed
    assert max(a["end"] for a in answers) > 2.5
    news = [e["message"] for e in events if e["kind"] == "source"]
    assert "played once at its own speed" in news[0]
    assert news[-1] == "ended: the file was played to its end"
    assert "has not grown" not in done.stdout + done.stderr
    assert took < 60  # no 30 s wait for a file that will not grow


def test_a_plain_mp4_still_being_written_is_one_line_error(tmp_path: Path) -> None:
    whole = make_video(tmp_path / "whole.mp4", frames=40, fps=FPS, size=(160, 120))
    partial = tmp_path / "recording.mp4"
    partial.write_bytes(whole.read_bytes()[:2000])  # the index (moov) is not written yet
    done = run_watch(partial, tmp_path / "no-model")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "without its index yet" in lines[0], done.stderr
    assert "frag_keyframe+empty_moov" in lines[0]


@pytest.mark.slow
def test_json_with_yes_no_prints_every_answer(llava_dir: Path, tmp_path: Path) -> None:
    stream = make_video(
        tmp_path / "live.ts", frames=60 * FPS, fps=FPS, size=(160, 120), codec="libx264"
    )  # read from before the model loads: it must last past that
    done = run_watch(stream, llava_dir, "--yes-no", "--json", "--duration", "3")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    answers = [e for e in events if e["kind"] == "answer"]
    assert answers, events  # the tiny model never says yes: each answer still comes
    assert all(isinstance(a["matched"], bool) for a in answers)
    assert [a["matched"] for a in answers] == [
        re.match(r"^\W*yes\b", a["answer"], re.IGNORECASE) is not None for a in answers
    ]

    quiet = run_watch(stream, llava_dir, "--yes-no", "--duration", "1")
    assert quiet.returncode == 0, quiet.stderr
    assert "printing only the answers that say yes (--json prints every answer" in quiet.stderr
