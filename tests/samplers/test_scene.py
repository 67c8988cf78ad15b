"""The scene sampler: shots found where the synthetic videos cut, frames per shot, shots on
the Clip, in the prompt, in `vidtt sample` and on the contact sheet; dedupe for every sampler."""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest

import vidtt
from vidtt.errors import OptionsError
from vidtt.formatters.common import timestamps_text
from vidtt.media.decode.dedupe import similarity, thumbnails
from vidtt.media.sheet import SHOT_COLOUR, contact_sheet
from vidtt.samplers import scene
from vidtt.samplers.scene import find_shots
from vidtt.testing import make_video
from vidtt.testing.scenes import ShotPlan, make_scene_video, scene_frames

SIZE = (160, 96)


def near(found: list[int], truth: list[int], tolerance: int = 2) -> bool:
    return len(found) == len(truth) and all(abs(f - t) <= tolerance for f, t in zip(found, truth))


def cuts_of(shots: list[vidtt.types.Shot]) -> list[int]:
    return [shot.first_frame for shot in shots[1:]]


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    folder = tmp_path_factory.mktemp("scenes")
    return {
        name: make_scene_video(folder / f"{name}.mp4", name, seconds=8, size=SIZE, seed=3)
        for name in ("cuts", "fades", "flashes", "motion", "static")
    }


@pytest.mark.parametrize("name", ["cuts", "fades", "flashes", "motion", "static"])
def test_cuts_found_where_the_video_cuts(videos: dict, name: str) -> None:
    video = videos[name]
    assert video.cuts
    assert near(cuts_of(find_shots(str(video.path), min_scene=0.5)), video.cuts), video.cuts


def test_dissolves_found_at_their_middle(tmp_path) -> None:
    video = make_scene_video(tmp_path / "d.mp4", "dissolves", seconds=8, size=SIZE, seed=1)
    found = cuts_of(find_shots(str(video.path), min_scene=0.5))
    hits = [t for t in video.cuts if any(abs(f - t) <= 2 for f in found)]
    assert len(hits) >= len(video.cuts) - 1 and len(found) <= len(video.cuts)


@pytest.mark.parametrize("speed", [1 / 100, 1 / 60, 1 / 25])
def test_a_camera_pan_with_a_moving_object_is_one_shot(tmp_path, speed: float) -> None:
    """A steady pan (a frame's width in 3.3, 2 and 0.8 s) across a textured scene whose colours
    drift, an object crossing it on its own path: every frame changes, no shot does."""
    plan = [ShotPlan(150, pan=speed, seed=1)]
    video = make_scene_video(tmp_path / "pan.mp4", shots=plan, size=SIZE)
    shots = find_shots(str(video.path))
    assert [(s.first_frame, s.end_frame) for s in shots] == [(0, video.frames)]


def test_pans_keep_their_cuts_fades_and_dissolves(tmp_path) -> None:
    """Two pans meeting in a hard cut, the second fading into an ordinary shot, which
    dissolves into another: the three transitions, and nothing inside the pans."""
    plan = [
        ShotPlan(120, pan=1 / 60, seed=1),
        ShotPlan(120, pan=1 / 40, seed=2, into="fade", blend=20),
        ShotPlan(120, seed=3, into="dissolve", blend=20),
        ShotPlan(120, seed=4),
    ]
    video = make_scene_video(tmp_path / "pans.mp4", shots=plan, size=SIZE)
    shots = find_shots(str(video.path))
    assert near(cuts_of(shots), video.cuts), video.cuts
    assert [s.boundary for s in shots] == ["start", "cut", "gradual", "gradual"]


@pytest.mark.parametrize("into", ["cut", "dissolve"])
def test_a_short_shot_is_reported_and_joined_only_for_frames(tmp_path, into: str) -> None:
    """A 0.8 s shot between two 2.5 s ones, under the default `min_scene` (1 s): `find_shots`
    and `shot_times` report it; the sampler's frames treat it as part of a neighbour."""
    blend, length = (12, 30) if into == "dissolve" else (0, 24)
    plan = [ShotPlan(75, seed=1, into=into, blend=blend), ShotPlan(length, seed=2), ShotPlan(75)]
    video = make_scene_video(tmp_path / "short.mp4", shots=plan, size=SIZE)
    shots = find_shots(str(video.path))
    assert near(cuts_of(shots), [75, 99]) and video.cuts == [75, 99]
    assert 0.7 <= shots[1].end - shots[1].start <= 0.9
    times = scene.SceneSampler().shot_times(str(video.path), start=0.5, end=5.0)
    assert len(times) == 3 and 0.7 <= times[1][1] - times[1][0] <= 0.9
    clip = vidtt.sample(str(video.path), "scene", max_frames=6)
    assert len(clip.shots) == 2 and all(shot.frames for shot in clip.shots)


def test_frames_from_every_shot_away_from_its_edges(videos: dict) -> None:
    video = videos["cuts"]
    clip = vidtt.sample(str(video.path), "scene", max_frames=8)
    assert len(clip) == 8 and len(clip.shots) == len(video.cuts) + 1
    for shot in clip.shots:
        assert shot.frames, shot
        for k in shot.frames:
            assert shot.first_frame < clip.indices[k] < shot.end_frame - 1
    assert [s.boundary for s in clip.shots] == ["start"] + ["cut"] * len(video.cuts)
    longest = max(clip.shots, key=lambda s: s.end_frame - s.first_frame)
    assert len(longest.frames) >= max(len(s.frames) for s in clip.shots) - 0


def test_fewer_frames_than_shots_joins_the_weakest(videos: dict) -> None:
    clip = vidtt.sample(str(videos["cuts"].path), "scene", max_frames=2)
    assert len(clip) == 2 and len(clip.shots) == 2
    assert any("more than max_frames=2" in w for w in clip.warnings)


def test_min_scene_merges_short_shots_and_no_cuts_is_uniform(videos: dict) -> None:
    path = str(videos["cuts"].path)
    clip = vidtt.sample(path, "scene", max_frames=4, min_scene=60)
    assert len(clip.shots) == 1
    assert clip.indices == vidtt.sample(path, "uniform", num_frames=4).indices


def test_frames_flag_and_budget_set_max_frames() -> None:
    assert scene.SceneSampler.frames_option() == "max_frames"


def test_time_range_keeps_shots_inside_it(videos: dict) -> None:
    video = videos["cuts"]
    start, end = video.cuts[0] / 30 + 0.5, video.cuts[-1] / 30 + 0.5
    shots = find_shots(str(video.path), start=start, end=end, min_scene=0.5)
    assert near(cuts_of(shots), video.cuts[1:])
    assert shots[0].start >= start - 0.05 and shots[-1].end <= end + 0.05


def test_shots_labelled_in_the_prompt(videos: dict) -> None:
    clip = vidtt.sample(str(videos["cuts"].path), "scene", max_frames=6)
    text = timestamps_text(clip, 1)
    assert text.startswith("Video 1, shot 1, 0:00-0:0")
    assert "; shot 2, 0:0" in text and f"shot {len(clip.shots)}," in text
    plain = vidtt.sample(str(videos["cuts"].path), "uniform", num_frames=3)
    assert "shot" not in timestamps_text(plain, 1)


def test_contact_sheet_marks_shot_changes(videos: dict) -> None:
    clip = vidtt.sample(str(videos["cuts"].path), "scene", max_frames=4)
    sheet = np.asarray(contact_sheet(clip))
    marked = np.all(sheet == SHOT_COLOUR, axis=-1).any(axis=0)
    assert marked.sum() >= len(clip.shots) * 3


def test_vidtt_sample_prints_shots(videos: dict, tmp_path) -> None:
    sheet = tmp_path / "sheet.png"
    run = subprocess.run(
        [sys.executable, "-m", "vidtt", "sample", str(videos["cuts"].path), "--sampler",
         "scene", "--frames", "5", "--sheet", str(sheet)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "scene took 5 frames" in run.stdout
    assert f"{len(videos['cuts'].cuts) + 1} shot(s):" in run.stdout
    assert "shot 2, 0:0" in run.stdout and "after a cut" in run.stdout
    assert sheet.exists()


def distinct_pairs(clip: vidtt.Clip, threshold: float) -> bool:
    thumbs = thumbnails(clip.array)
    return all(similarity(a, b) < threshold for a, b in itertools.pairwise(thumbs))


def static_video(tmp_path) -> object:
    shots = [ShotPlan(150, speed=0.0, seed=1), ShotPlan(30, seed=2), ShotPlan(30, seed=3)]
    return make_scene_video(tmp_path / "still.mp4", shots=shots, size=SIZE)


def test_dedupe_gives_distinct_frames_and_replaces_them(tmp_path) -> None:
    path = str(static_video(tmp_path).path)
    plain = vidtt.sample(path, "uniform", num_frames=6)
    assert not distinct_pairs(plain, 0.95)
    clip = vidtt.sample(path, "uniform", num_frames=6, dedupe=0.95)
    assert distinct_pairs(clip, 0.95)
    assert len(clip) > 3 and set(clip.indices) - set(plain.indices)
    assert clip.metadata["duplicates_dropped"] > 0


def test_dedupe_on_every_sampler(tmp_path) -> None:
    path = str(static_video(tmp_path).path)
    for name, options in [("interval", {"every": 0.5}), ("keyframe", {}), ("scene", {})]:
        clip = vidtt.sample(path, name, dedupe=True, **options)
        assert distinct_pairs(clip, 0.95) or clip.shots, name
    with pytest.raises(OptionsError, match="dedupe"):
        vidtt.sample(path, "uniform", dedupe=1.5)


def test_dedupe_frame_list() -> None:
    frames = [np.full((32, 32, 3), v, np.uint8) for v in (10, 10, 10, 200, 200, 90)]
    clip = vidtt.sample(frames, "uniform", num_frames=3, dedupe=0.9)
    assert sorted({int(f.mean()) for f in clip.array}) == [10, 90, 200]


def test_scene_on_a_frame_list_finds_its_cuts() -> None:
    frames, cuts = scene_frames("cuts", 8, 30, SIZE, seed=3)
    clip = vidtt.sample(vidtt.VideoSource.from_frames(frames, fps=30), "scene", min_scene=0.5)
    assert near(cuts_of(clip.shots), cuts)


def test_one_frame_video(tmp_path) -> None:
    clip = vidtt.sample(str(make_video(tmp_path / "one.mp4", frames=1)), "scene")
    assert len(clip) == 1 and len(clip.shots) == 1 and clip.shots[0].frames == [0]


def test_all_cuts_video_is_uniform_with_a_warning() -> None:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(60)]
    clip = vidtt.sample(frames, "scene", max_frames=4)
    assert len(clip) == 4 and len(clip.shots) == 1
    assert any("nearly every frame differs" in w for w in clip.warnings)


def test_no_keyframe_flags_and_variable_frame_rate(tmp_path, videos: dict) -> None:
    video = videos["cuts"]
    flagless = make_scene_video(
        tmp_path / "nokeys.mkv", "cuts", seconds=8, size=SIZE, seed=3, keyframe_flags=False
    )
    assert near(cuts_of(find_shots(str(flagless.path), min_scene=0.5)), video.cuts)
    times = list(np.cumsum(np.where(np.arange(400) % 2, 1 / 20, 1 / 40)))
    vfr = make_scene_video(tmp_path / "vfr.mp4", "cuts", 8, size=SIZE, seed=3, frame_times=times)
    assert near(cuts_of(find_shots(str(vfr.path), min_scene=0.5)), video.cuts)


def test_long_videos_look_at_keyframes_only(monkeypatch, videos: dict) -> None:
    monkeypatch.setattr(scene, "DENSE_FRAMES", 50)
    video = videos["cuts"]
    clip = vidtt.sample(str(video.path), "scene", max_frames=8)
    assert any("keyframes only" in w for w in clip.warnings)
    found = cuts_of(clip.shots)
    assert found and all(any(abs(f - t) <= 2 for t in video.cuts) for f in found)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"threshold": 0}, "threshold"),
        ({"min_scene": -1}, "min_scene"),
        ({"max_frames": 0}, "max_frames"),
    ],
)
def test_bad_options_name_the_option(videos: dict, options: dict, named: str) -> None:
    with pytest.raises(OptionsError, match=named) as error:
        vidtt.sample(str(videos["cuts"].path), "scene", **options)
    assert "\n" not in str(error.value)


def test_requests_take_dedupe_at_the_top_level() -> None:
    from vidtt.pipeline.request import parse_request

    request = parse_request({"videos": ["a.mp4"], "question": "what?", "dedupe": 0.9})
    assert request.sampler_options["dedupe"] == 0.9


def test_a_visual_token_budget_gives_fewer_frames_per_shot(llava_dir, videos: dict) -> None:
    """The budget plans the scene sampler's max_frames: a small budget, fewer frames, still
    spread over the shots; the plan is what the Answer reports."""
    video = str(videos["cuts"].path)
    counts = {}
    for budget in (64, 320):
        pipe = vidtt.Pipeline(
            model=str(llava_dir),
            backend="cpu",
            sampler="scene",
            max_visual_tokens=budget,
            generation={"max_new_tokens": 2},
        )
        answer = pipe.ask(video, "What happens?")
        used = answer.videos[0]
        assert used.sampler == "scene" and used.budget is not None
        assert answer.usage.visual_tokens <= budget
        counts[budget] = len(used.indices)
    assert counts[64] == 4 < counts[320]  # 16 tokens a frame in the tiny model
