"""`vidtt eval --sweep`: a grid of request settings, each asked of the same questions.

`--sweep frames=8,16,32 sampler=uniform,scene` is the grid of every combination (6 settings),
in the order written. Each setting becomes fields of every request of the set (`vidtt run`'s
request fields), so one loaded model, one frame cache and one prefix cache serve them all:
frames sampled alike by two settings are decoded once, and prompt starts are shared.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Mapping, Sequence
from typing import Any

from vidtt.errors import OptionsError
from vidtt.pipeline.request import SAMPLING_KEYS, parse_request

Setting = dict[str, Any]

# what can be swept: its request field (`frames` is the sampler's own frame-count option)
FIELDS = {
    "frames": "frames",
    "sampler": "sampler",
    "transcript": "transcript",
    "max_visual_tokens": "max_visual_tokens",
    "max_transcript_tokens": "max_transcript_tokens",
    "strategy": "strategy",
    "timestamps": "timestamps",
    "max_new_tokens": "max_new_tokens",
    **{key: key for key in sorted(SAMPLING_KEYS - {"start", "end"})},
}
NONE_WORDS = {"none", "null", "off"}  # for fields where off means no value (a budget)
NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def _value(key: str, text: str) -> Any:
    """One swept value: a number, true/false, none (no value) or text."""
    word = text.strip()
    if NUMBER.match(word):
        return float(word) if "." in word else int(word)
    if key == "timestamps" and word.lower() in ("on", "off", "true", "false"):
        return word.lower() in ("on", "true")
    if word.lower() in NONE_WORDS and key in ("max_visual_tokens", "max_transcript_tokens"):
        return None
    return word


def _axis(item: str) -> tuple[str, list[Any]]:
    """`KEY=V1,V2,...` as the key and its values."""
    key, sep, values = item.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not values.strip():
        raise OptionsError(f"--sweep {item!r}: write KEY=VALUE1,VALUE2 (e.g. frames=8,16,32)")
    if key not in FIELDS:
        near = difflib.get_close_matches(key, FIELDS, n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise OptionsError(
            f"--sweep cannot vary {key!r}: {hint}it varies {', '.join(sorted(FIELDS))}"
        )
    parts = [part for part in values.split(",") if part.strip()]
    return key, [_value(key, part) for part in parts]


def parse_sweep(items: Sequence[str]) -> list[Setting]:
    """The grid of settings `items` (`KEY=V1,V2` each) spans, the first key varying slowest."""
    axes = [_axis(item) for item in items]
    keys = [key for key, _ in axes]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise OptionsError(f"--sweep names {repeated[0]!r} twice: give its values once, a,b,c")
    return [dict(zip(keys, values)) for values in itertools.product(*(v for _, v in axes))]


def setting_name(setting: Mapping[str, Any]) -> str:
    """`frames=8 sampler=scene`: how a setting is shown (empty for no setting)."""
    return " ".join(f"{key}={_shown(value)}" for key, value in setting.items())


def setting_folder(setting: Mapping[str, Any]) -> str:
    """The setting's sub-folder name: `frames=8_sampler=scene`, safe on every filesystem."""
    name = "_".join(f"{key}={_shown(value)}" for key, value in setting.items())
    return re.sub(r"[^A-Za-z0-9=._-]", "-", name)[:200]


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def request_fields(setting: Mapping[str, Any], registry: Any, run_sampler: str) -> dict[str, Any]:
    """The request fields of a setting. A swept sampler must be known to `registry`; `frames`
    is the frame-count option of the setting's sampler, else of the run's (`run_sampler`)."""
    fields = {FIELDS[key]: value for key, value in setting.items() if key != "frames"}
    sampler = registry.sampler(str(setting.get("sampler") or run_sampler))  # names a typo
    if "frames" in setting:
        option = sampler.frames_option()
        if option is None:
            raise OptionsError(
                f"--sweep frames: sampler {sampler.name!r} has no frame-count option; sweep "
                "its own option instead (e.g. fps=1,2)"
            )
        try:
            sampler.options(**{option: setting["frames"]})
        except (OptionsError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise OptionsError(f"--sweep frames={setting['frames']}: {first}") from None
        fields["sampler_options"] = {option: setting["frames"]}
    return fields


def check_setting(setting: Mapping[str, Any], fields: Mapping[str, Any]) -> None:
    """Refuse, before any model loads, a setting no request can take (one line naming it)."""
    try:
        parse_request({"videos": ["check.mp4"], "question": "check", **fields})
    except (OptionsError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise OptionsError(f"--sweep {setting_name(setting)}: {first}") from None
