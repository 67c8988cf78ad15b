"""Readers for benchmarks stored locally in their published layout (docs/eval.md).

Each `read_<name>(root)` turns a benchmark's files, as users download them, into `Question`s
with plain options lettered A, B, ... and groups (`category`, `duration`, ...); every bad row
and every missing video is listed together in one `QuestionsError`, before any model loads.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vidtt.eval.questions import (
    LETTERS,
    Question,
    QuestionsError,
    answer_letter,
    plain_options,
    raise_problems,
)

Reader = Callable[[Path], list[Question]]
VIDEO_SUFFIXES = (".mp4", ".MP4", ".mkv", ".webm")

# MVBench: json file -> (task, folder under video/, has start/end); as OpenGVLab's data_list
MVBENCH_TASKS: dict[str, tuple[str, str, bool]] = {
    "action_sequence": ("Action Sequence", "star/Charades_v1_480", True),
    "action_prediction": ("Action Prediction", "star/Charades_v1_480", True),
    "action_antonym": ("Action Antonym", "ssv2_video", False),
    "fine_grained_action": ("Fine-grained Action", "Moments_in_Time_Raw/videos", False),
    "unexpected_action": ("Unexpected Action", "FunQA_test/test", False),
    "object_existence": ("Object Existence", "clevrer/video_validation", False),
    "object_interaction": ("Object Interaction", "star/Charades_v1_480", True),
    "object_shuffle": ("Object Shuffle", "perception/videos", False),
    "moving_direction": ("Moving Direction", "clevrer/video_validation", False),
    "action_localization": ("Action Localization", "sta/sta_video", True),
    "scene_transition": ("Scene Transition", "scene_qa/video", False),
    "action_count": ("Action Count", "perception/videos", False),
    "moving_count": ("Moving Count", "clevrer/video_validation", False),
    "moving_attribute": ("Moving Attribute", "clevrer/video_validation", False),
    "state_change": ("State Change", "perception/videos", False),
    "fine_grained_pose": ("Fine-grained Pose", "nturgbd", False),
    "character_order": ("Character Order", "perception/videos", False),
    "egocentric_navigation": ("Egocentric Navigation", "vlnqa", False),
    "episodic_reasoning": ("Episodic Reasoning", "tvqa/frames_fps3_hq", True),
    "counterfactual_inference": ("Counterfactual Inference", "clevrer/video_validation", False),
}


def _finish(name: str, looked_in: Path, questions: list[Question], problems: list[str]) -> None:
    """Raise one error listing bad rows and every missing video (with the folder looked in)."""
    missing = [f"{q.id}: video not found: {q.video}" for q in questions if not q.video.exists()]
    if missing:
        problems = [*problems, f"{len(missing)} video(s) missing under {looked_in}:", *missing]
    if not questions and not problems:
        problems = ["no questions found"]
    raise_problems(name, problems)


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise QuestionsError(f"{path}: cannot be read as JSON ({e})") from e


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise QuestionsError(f"{path} not found: {what}")
    return path


def _video(folder: Path, stem: str) -> Path:
    """`folder/stem` with the first suffix that exists (`.mp4` when none does)."""
    for suffix in VIDEO_SUFFIXES:
        if (folder / f"{stem}{suffix}").exists():
            return folder / f"{stem}{suffix}"
    return folder / f"{stem}.mp4"


def _choice(
    where: str, row: dict[str, Any], options: Any, answer: Any, problems: list[str]
) -> tuple[list[str], str] | None:
    """Plain options and the answer's letter, or None with the row's problem appended."""
    if (
        not isinstance(options, list)
        or len(options) < 2
        or not all(isinstance(o, str) for o in options)
    ):
        problems.append(f"{where}: options are not a list of texts: {options!r}")
        return None
    plain = plain_options(options)
    letter = answer_letter(plain, answer)
    if letter is None or not isinstance(row.get("question"), str):
        problems.append(f"{where}: answer {answer!r} is not one of the options, or no question")
        return None
    return plain, letter


def _rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a parquet file (pyarrow) or a JSON list."""
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise QuestionsError(
                f"{path}: reading parquet needs pyarrow: pip install 'vidtt[eval]'"
            ) from None
        return list(pq.read_table(path).to_pylist())
    data = _json(path)
    if not isinstance(data, list):
        raise QuestionsError(f"{path}: a JSON list of questions is expected")
    return data


def read_videomme(root: Path) -> list[Question]:
    """Video-MME (lmms-lab/Video-MME): `videomme/test-*.parquet` (or a JSON list of the same
    rows) and the videos unzipped to `data/<videoID>.mp4`."""
    files = sorted((root / "videomme").glob("*.parquet")) or sorted(
        (root / "videomme").glob("*.json")
    )
    if not files:
        raise QuestionsError(
            f"{root}/videomme/test-*.parquet not found: download lmms-lab/Video-MME into {root}"
        )
    questions: list[Question] = []
    problems: list[str] = []
    for path in files:
        for n, row in enumerate(_rows(path), 1):
            where = f"{path.name} row {n}"
            got = _choice(where, row, row.get("options"), row.get("answer"), problems)
            if got is None:
                continue
            groups = {k: str(row[k]) for k in ("domain", "sub_category") if row.get(k)}
            groups |= {
                "category": str(row.get("task_type", "")),
                "duration": str(row.get("duration", "")),
            }
            questions.append(
                Question(
                    id=str(row.get("question_id", f"{path.stem}-{n}")),
                    video=_video(root / "data", str(row.get("videoID", ""))),
                    question=row["question"],
                    kind="choice",
                    options=got[0],
                    answer=got[1],
                    groups=groups,
                )
            )
    _finish(f"Video-MME at {root}", root / "data", questions, problems)
    return questions


def read_mvbench(root: Path) -> list[Question]:
    """MVBench (OpenGVLab/MVBench): `json/<task>.json` and videos under `video/<source>/`."""
    files = [root / "json" / f"{key}.json" for key in MVBENCH_TASKS]
    if not any(f.exists() for f in files):
        raise QuestionsError(
            f"{root}/json/<task>.json not found: download OpenGVLab/MVBench into {root}"
        )
    questions: list[Question] = []
    problems: list[str] = []
    for path in (f for f in files if f.exists()):
        task, folder, bounded = MVBENCH_TASKS[path.stem]
        for n, row in enumerate(_rows(path), 1):
            where = f"{path.name} item {n}"
            got = _choice(where, row, row.get("candidates"), row.get("answer"), problems)
            if got is None:
                continue
            start, end = (row.get("start"), row.get("end")) if bounded else (None, None)
            questions.append(
                Question(
                    id=f"{path.stem}-{n}",
                    video=root / "video" / folder / str(row.get("video", "")),
                    question=row["question"],
                    kind="choice",
                    options=got[0],
                    answer=got[1],
                    groups={"category": task, "task": task},
                    start=start,
                    end=end,
                )
            )
    _finish(f"MVBench at {root}", root / "video", questions, problems)
    return questions


def read_longvideobench(root: Path) -> list[Question]:
    """LongVideoBench (longvideobench/LongVideoBench): `lvb_val.json`, videos in `videos/`."""
    path = _need(root / "lvb_val.json", "download longvideobench/LongVideoBench there")
    questions: list[Question] = []
    problems: list[str] = []
    for n, row in enumerate(_rows(path), 1):
        where = f"{path.name} item {n}"
        got = _choice(where, row, row.get("candidates"), row.get("correct_choice"), problems)
        if got is None:
            continue
        groups = {k: str(row[k]) for k in ("level", "topic_category") if row.get(k)}
        groups["category"] = str(row.get("question_category", ""))
        groups["duration"] = str(row.get("duration_group", ""))
        questions.append(
            Question(
                id=str(row.get("id", f"lvb-{n}")),
                video=root / "videos" / str(row.get("video_path", "")),
                question=row["question"],
                kind="choice",
                options=got[0],
                answer=got[1],
                groups=groups,
            )
        )
    _finish(f"LongVideoBench at {root}", root / "videos", questions, problems)
    return questions


def read_mlvu(root: Path) -> list[Question]:
    """MLVU dev (MLVU/MVLU): `json/<n>_<task>.json`, videos in `video/<n>_<task>/` (or
    `video/<task>/`); `root` may also be the folder holding `MLVU/`."""
    if not (root / "json").is_dir() and (root / "MLVU" / "json").is_dir():
        root = root / "MLVU"
    files = sorted((root / "json").glob("*_*.json"))
    if not files:
        raise QuestionsError(f"{root}/json/<n>_<task>.json not found: download MLVU there")
    questions: list[Question] = []
    problems: list[str] = []
    for path in files:
        task = path.stem.split("_", 1)[1]
        folder = root / "video" / path.stem
        if not folder.is_dir() and (root / "video" / task).is_dir():
            folder = root / "video" / task
        questions += _mlvu_file(path, folder, problems)
    _finish(f"MLVU at {root}", root / "video", questions, problems)
    return questions


def _mlvu_file(path: Path, folder: Path, problems: list[str]) -> list[Question]:
    """One MLVU task file: choices where `candidates` are given, open answers else."""
    questions: list[Question] = []
    for n, row in enumerate(_rows(path), 1):
        where = f"{path.name} item {n}"
        groups = {"category": str(row.get("question_type", path.stem.split("_", 1)[1]))}
        common = {"id": f"{path.stem}-{n}", "video": folder / str(row.get("video", ""))}
        if "candidates" not in row:
            answer = row.get("answer")
            if not isinstance(answer, str) or not isinstance(row.get("question"), str):
                problems.append(f"{where}: no question or answer text")
                continue
            questions.append(
                Question(
                    **common, question=row["question"], kind="open", answer=[answer], groups=groups
                )
            )
            continue
        got = _choice(where, row, row.get("candidates"), row.get("answer"), problems)
        if got is not None:
            questions.append(
                Question(
                    **common,
                    question=row["question"],
                    kind="choice",
                    options=got[0],
                    answer=got[1],
                    groups=groups,
                )
            )
    return questions


def read_charades_sta(root: Path) -> list[Question]:
    """Charades-STA test: `charades_sta_test.txt` lines `VIDEOID start end##sentence`, videos
    in `Charades_v1_480/<VIDEOID>.mp4`."""
    path = _need(root / "charades_sta_test.txt", "put Charades-STA's test annotations there")
    questions: list[Question] = []
    problems: list[str] = []
    line_form = re.compile(r"^(\S+)\s+([\d.]+)\s+([\d.]+)##(.+)$")
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        m = line_form.match(line.strip())
        if m is None:
            problems.append(f"{path.name} line {n}: not `VIDEOID start end##sentence`: {line!r}")
            continue
        start, end = float(m.group(2)), float(m.group(3))
        if end <= start:
            problems.append(f"{path.name} line {n}: span end {end} is not after start {start}")
            continue
        questions.append(
            Question(
                id=f"{m.group(1)}-{n}",
                video=root / "Charades_v1_480" / f"{m.group(1)}.mp4",
                question=m.group(4).strip(),
                kind="grounding",
                spans=[(start, end)],
            )
        )
    _finish(f"Charades-STA at {root}", root / "Charades_v1_480", questions, problems)
    return questions


def read_timelens(root: Path) -> list[Question]:
    """TimeLens-Bench: `<subset>-timelens.json` ({video id: {duration, spans, queries}}),
    videos in `videos/<subset>/<video id>.mp4`; one question per query."""
    files = sorted(root.glob("*-timelens.json"))
    if not files:
        raise QuestionsError(f"{root}/<subset>-timelens.json not found: download TimeLens-Bench")
    questions: list[Question] = []
    problems: list[str] = []
    for path in files:
        subset = path.name.removesuffix("-timelens.json")
        data = _json(path)
        if not isinstance(data, dict):
            problems.append(f"{path.name}: an object keyed by video id is expected")
            continue
        for vid, item in data.items():
            questions += _timelens_video(
                path.name, subset, root / "videos" / subset, vid, item, problems
            )
    _finish(f"TimeLens at {root}", root / "videos", questions, problems)
    return questions


def _timelens_video(
    name: str, subset: str, folder: Path, vid: str, item: Any, problems: list[str]
) -> list[Question]:
    """The questions of one TimeLens video: its queries, each with its span(s)."""
    queries = item.get("queries") if isinstance(item, dict) else None
    spans = item.get("spans") if isinstance(item, dict) else None
    if not isinstance(queries, list) or not isinstance(spans, list) or len(queries) != len(spans):
        problems.append(f"{name} {vid}: needs 'queries' and 'spans' lists of the same length")
        return []
    questions: list[Question] = []
    for i, (query, span) in enumerate(zip(queries, spans, strict=True)):
        pairs = _pairs(span)
        if pairs is None:
            problems.append(f"{name} {vid} query {i}: bad span {span!r} (need end > start)")
            continue
        questions.append(
            Question(
                id=f"{subset}-{vid}-{i}",
                video=folder / f"{vid}.mp4",
                question=re.sub(r"\s+", " ", str(query)).strip().rstrip("."),
                kind="grounding",
                spans=pairs,
                groups={"subset": subset},
            )
        )
    return questions


def _pairs(span: Any) -> list[tuple[float, float]] | None:
    """`[s, e]` or `[[s, e], ...]` as pairs with e > s, or None when malformed."""
    pairs = [span] if isinstance(span, list) and span and not isinstance(span[0], list) else span
    try:
        out = [(float(s), float(e)) for s, e in pairs]
    except (TypeError, ValueError):
        return None
    return out if out and all(e > s >= 0 for s, e in out) else None


BENCHMARKS: dict[str, Reader] = {
    "videomme": read_videomme,
    "mvbench": read_mvbench,
    "longvideobench": read_longvideobench,
    "mlvu": read_mlvu,
    "charades_sta": read_charades_sta,
    "timelens": read_timelens,
}


def read_benchmark(name: str, root: str | Path) -> list[Question]:
    """The questions of benchmark `name` stored under `root` (`Video-MME` = `videomme`)."""
    key = re.sub(r"[-_\s]", "", name.lower())
    names = {k.replace("_", ""): k for k in BENCHMARKS}
    if key not in names:
        near = difflib.get_close_matches(key, list(names), n=1)
        hint = f"did you mean {names[near[0]]!r}? " if near else ""
        raise QuestionsError(f"unknown benchmark {name!r}: {hint}known: {', '.join(BENCHMARKS)}")
    root = Path(root)
    if not root.is_dir():
        raise QuestionsError(f"{root}: no such folder; give the folder {name} was downloaded to")
    return BENCHMARKS[names[key]](root)


__all__ = [
    "BENCHMARKS",
    "LETTERS",
    "read_benchmark",
    "read_charades_sta",
    "read_longvideobench",
    "read_mlvu",
    "read_mvbench",
    "read_timelens",
    "read_videomme",
]
