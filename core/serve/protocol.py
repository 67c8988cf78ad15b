"""The OpenAI chat-completions request, read into a vidtt `Request`, for `vidtt serve`.

Every mistake is an `APIError` that names the offending field (`param`) the way OpenAI's API
does; nothing here imports FastAPI, so the rules can be tested without a server. Media URLs
become what a `Pipeline` samples in `vidtt.serve.media`.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidtt.interfaces import COUNT_OPTIONS
from vidtt.pipeline.request import PASSED_OPTIONS, SAMPLING_KEYS, Request, parse_request
from vidtt.serve.errors import APIError
from vidtt.serve.media import media_value
from vidtt.types import ImagePart, Message, TextPart, VideoPart
from vidtt.types.answers import MAX_NEW_TOKENS, MAX_SEED

if TYPE_CHECKING:
    from vidtt.serve.upload_store import Uploads

MAX_STOP = 4  # OpenAI's limit on stop sequences
MAX_SAMPLING_VALUE = 10**9  # frames, pixels, frames a second or seconds (31 years): no more
PART_TYPES = ("text", "image_url", "video_url", "video", "image")
# Fields OpenAI defines that vidtt accepts and ignores (they change nothing it does).
IGNORED = frozenset(
    {"user", "metadata", "store", "service_tier", "safety_identifier", "parallel_tool_calls"}
)
# Fields accepted only at their neutral value.
NEUTRAL = {
    "frequency_penalty": 0,
    "presence_penalty": 0,
    "logprobs": False,
    "top_logprobs": None,
    "logit_bias": {},
    "tools": [],
    "tool_choice": "none",
    "response_format": {"type": "text"},
    "modalities": ["text"],
}
OPENAI_FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "seed",
        "stop",
        "n",
        "stream",
        "stream_options",
    }
)
VIDTT_FIELDS = frozenset(
    {*SAMPLING_KEYS, *PASSED_OPTIONS, "sampler", "sampler_options", "min_tokens", "top_k"}
    | {"repetition_penalty"}
)
KNOWN = OPENAI_FIELDS | VIDTT_FIELDS | IGNORED | frozenset(NEUTRAL)


@dataclass(frozen=True)
class ServeLimits:
    """What one request may ask of the server."""

    max_videos: int = 8
    max_images: int = 16
    max_frames: int = 256  # video frames over all the videos of a request
    allowed_local_media_path: Path | None = None  # resolved; None: no local files
    uploads: Uploads | None = None  # where upload: URLs are read (the server's); None: none


@dataclass
class ChatRequest:
    """A chat-completions request read and checked, its media not yet loaded."""

    model: str | None
    messages: list[dict[str, Any]]  # as sent; `media_request` loads them
    generation: dict[str, Any]
    sampler: str | None
    sampler_options: dict[str, Any]
    timestamps: bool | None
    stream: bool
    include_usage: bool
    extra: dict[str, Any]  # passed on to Request as they are (max_visual_tokens, transcript...)
    # the request's name (`param`) for each vidtt option it set: max_new_tokens -> max_tokens
    params: dict[str, str] = field(default_factory=dict)


def parse_chat(body: Any, limits: ServeLimits) -> ChatRequest:
    """Check the JSON body of `POST /v1/chat/completions` (no media is read here)."""
    if not isinstance(body, dict):
        raise APIError("the request body must be a JSON object")
    check_fields(body)
    model = _optional(body, "model", str)
    n = _optional(body, "n", int)
    if n is not None and n != 1:
        raise APIError("only n=1 is supported: send the request several times", param="n")
    stream, include_usage = stream_of(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise APIError("messages must be a non-empty list of messages", param="messages")
    count_media(messages, limits)
    sampler_options = dict(_optional(body, "sampler_options", dict) or {})
    params = {str(k): f"sampler_options.{k}" for k in sampler_options}
    sampler_options.update({k: body[k] for k in SAMPLING_KEYS if body.get(k) is not None})
    params.update({k: k for k in SAMPLING_KEYS if body.get(k) is not None})
    for key, value in sampler_options.items():
        check_sampling_number(value, params.get(str(key), str(key)))
    check_frame_counts(sampler_options, messages, limits, params)
    timestamps = _optional(body, "timestamps", bool)
    sampler = _optional(body, "sampler", str)
    passed = [key for key in PASSED_OPTIONS if key != "timestamps"]  # (read above)
    extra = {k: body[k] for k in passed if body.get(k) is not None}
    params.update({k: k for k in extra})
    options = generation(body)
    params.update({k: GENERATION_PARAMS.get(k, k) for k in options})
    if "max_new_tokens" in options and "max_completion_tokens" in body:
        params["max_new_tokens"] = "max_completion_tokens"
    return ChatRequest(
        model=model,
        messages=messages,
        generation=options,
        sampler=sampler,
        sampler_options=sampler_options,
        timestamps=timestamps,
        stream=stream,
        include_usage=include_usage,
        extra=extra,
        params=params,
    )


def check_fields(body: dict[str, Any]) -> None:
    """Refuse a field vidtt does not know (naming the nearest it does), one it does not
    support set to anything but its neutral value, and a budget field this vidtt lacks."""
    unknown = sorted(k for k in body if k not in KNOWN)
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), sorted(KNOWN), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise APIError(
            f"unrecognized request argument {str(unknown[0])[:60]!r}{hint}", param=unknown[0]
        )
    for name, neutral in NEUTRAL.items():
        value = body.get(name)
        if value is not None and value != neutral and value not in ({}, [], False, 0, ""):
            raise APIError(
                f"{name} is not supported by vidtt serve", param=name, code="unsupported"
            )
    if "max_visual_tokens" in body or "fit" in body:
        missing = [k for k in ("max_visual_tokens", "fit") if k in body]
        if not all(k in Request.model_fields for k in missing):
            raise APIError(f"{missing[0]} is not supported by this vidtt", param=missing[0])


def stream_of(body: dict[str, Any]) -> tuple[bool, bool]:
    """Whether the answer is streamed, and whether its stream ends with the usage."""
    stream = bool(_optional(body, "stream", bool))
    options = _optional(body, "stream_options", dict)
    if options is not None and not stream:
        raise APIError("stream_options is only allowed with stream: true", param="stream_options")
    include_usage = False
    if options:
        unknown_options = sorted(set(options) - {"include_usage", "continuous_usage_stats"})
        if unknown_options:
            raise APIError(f"unknown stream option {unknown_options[0]!r}", param="stream_options")
        include_usage = bool(_optional(options, "include_usage", bool, "stream_options."))
    return stream, include_usage


# vidtt's generation options under the names a chat-completions request gives them
GENERATION_PARAMS = {"max_new_tokens": "max_tokens", "min_new_tokens": "min_tokens"}


def param_of(message: str, params: dict[str, str]) -> str | None:
    """The request field an option error is about: the first option the request set that
    the message names (after the `video N (...)` prefix, whose label could name anything)."""
    text = re.sub(r"^video \d+ \(.*?\): ", "", message)
    return next((params[w] for w in re.findall(r"[A-Za-z_]\w*", text) if w in params), None)


TYPE_NAMES = {str: "a string", int: "an integer", float: "a finite number", bool: "true or false"}


def _optional(data: dict[str, Any], key: str, kind: type, prefix: str = "") -> Any:
    value = data.get(key)
    if value is None:
        return None
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and _finite(value)
    if not ok:
        raise APIError(
            f"{prefix}{key} must be {TYPE_NAMES.get(kind, 'an object')}", param=f"{prefix}{key}"
        )
    return value


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _integer(body: dict[str, Any], key: str, low: int, high: int, shown: str = "") -> Any:
    """An optional integer field within [low, high] (`shown`: how the top is written)."""
    value = _optional(body, key, int)
    if value is not None and not low <= value <= high:
        top = shown or str(high)
        raise APIError(f"{key} must be between {low} and {top}, not {_clipped(value)}", param=key)
    return value


def _clipped(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def generation(body: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's sampling fields as vidtt `GenerationOptions` fields (unset ones left out);
    each number is checked against its range here, so the error names the field."""
    out: dict[str, Any] = {}
    for key in ("max_completion_tokens", "max_tokens"):
        value = _integer(body, key, 1, MAX_NEW_TOKENS)
        if value is not None:
            out.setdefault("max_new_tokens", value)
    minimum = _integer(body, "min_tokens", 0, MAX_NEW_TOKENS)
    if minimum is not None:
        if minimum > out.get("max_new_tokens", MAX_NEW_TOKENS):
            raise APIError(
                f"min_tokens={minimum} is above max_tokens={out['max_new_tokens']}",
                param="min_tokens",
            )
        out["min_new_tokens"] = minimum
    temperature = _optional(body, "temperature", float)
    top_p = _optional(body, "top_p", float)
    top_k = _optional(body, "top_k", int)
    if temperature is not None and not 0 <= temperature <= 2:
        raise APIError("temperature must be between 0 and 2", param="temperature")
    if top_p is not None and not 0 < top_p <= 1:
        raise APIError("top_p must be above 0 and at most 1", param="top_p")
    if top_k is not None and top_k < 1:
        raise APIError("top_k must be at least 1", param="top_k")
    if temperature == 0:
        out["do_sample"] = False  # greedy, whatever top_p and top_k say
    elif temperature is not None or (top_p is not None and top_p < 1) or top_k is not None:
        out["do_sample"] = True
        if temperature is not None:
            out["temperature"] = float(temperature)
        if top_p is not None:
            out["top_p"] = float(top_p)
        if top_k is not None:
            out["top_k"] = top_k
    penalty = _optional(body, "repetition_penalty", float)
    if penalty is not None:
        if penalty <= 0:
            raise APIError("repetition_penalty must be above 0", param="repetition_penalty")
        out["repetition_penalty"] = float(penalty)
    seed = _integer(body, "seed", 0, MAX_SEED, "2**64 - 1")
    if seed is not None:
        out["seed"] = seed
    stop = body.get("stop")
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
            raise APIError("stop must be a non-empty string or a list of them", param="stop")
        if len(stops) > MAX_STOP:
            raise APIError(f"stop takes at most {MAX_STOP} strings", param="stop")
        if stops:
            out["stop"] = stops
    return out


# -- messages ---------------------------------------------------------------------------------
def _parts(message: Any, where: str) -> list[Any]:
    if not isinstance(message, dict):
        raise APIError(f"{where} must be an object with a role and content", param=where)
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list) or not content:
        raise APIError(
            f"{where}.content must be a string or a non-empty list of parts",
            param=f"{where}.content",
        )
    return content


def count_media(messages: list[Any], limits: ServeLimits) -> None:
    """Refuse unknown roles and part types, and more videos or images than allowed."""
    videos = images = 0
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("system", "developer", "user", "assistant"):
            raise APIError(
                f"{where}.role must be system, developer, user or assistant, not {role!r}",
                param=f"{where}.role",
            )
        extra = sorted(set(message) - {"role", "content", "name"})
        if extra:
            raise APIError(
                f"{where}.{extra[0]} is not supported by vidtt serve", param=f"{where}.{extra[0]}"
            )
        for j, part in enumerate(_parts(message, where)):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind not in PART_TYPES:
                raise APIError(
                    f"unsupported content part type {kind!r} in {where}.content[{j}]: use "
                    "text, image_url, video_url or video",
                    param=f"{where}.content[{j}].type",
                    code="unsupported_content_type",
                )
            videos += kind in ("video_url", "video")
            images += kind in ("image_url", "image")
    if videos > limits.max_videos:
        raise APIError(
            f"the request has {videos} videos; this server takes at most {limits.max_videos}",
            param="messages",
            code="too_many_videos",
        )
    if images > limits.max_images:
        raise APIError(
            f"the request has {images} images; this server takes at most {limits.max_images}",
            param="messages",
            code="too_many_images",
        )


def check_sampling_number(value: Any, param: str) -> None:
    """Refuse a sampler option that is a number no frame count, size, rate or time can be
    (not finite, or past `MAX_SAMPLING_VALUE`), before a sampler computes with it; its type
    and range are the sampler's to check."""
    items = value if isinstance(value, (list, tuple)) else [value]
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            continue
        if not _finite(item) or abs(item) > MAX_SAMPLING_VALUE:
            raise APIError(
                f"{param} must be a finite number between -{MAX_SAMPLING_VALUE} and "
                f"{MAX_SAMPLING_VALUE}, not {_clipped(item)}",
                param=param,
            )


def check_frame_counts(
    options: dict[str, Any],
    messages: list[Any],
    limits: ServeLimits,
    params: dict[str, str] | None = None,
) -> None:
    """Refuse, before any video is read, a frame count that is over the limit by itself."""
    videos = sum(
        isinstance(p, dict) and p.get("type") in ("video_url", "video")
        for m in messages
        for p in _parts(m, "messages")
    )
    for key in COUNT_OPTIONS:
        value = options.get(key)
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and value * videos > (limits.max_frames)
        ):
            raise APIError(
                f"{key}={value} for {videos} video(s) is over this server's limit of "
                f"{limits.max_frames} frames per request",
                param=(params or {}).get(key, key),
                code="too_many_frames",
            )


def build_request(chat: ChatRequest, limits: ServeLimits) -> Request:
    """The vidtt Request, its media loaded (data: URLs decoded, local paths checked). Reads
    files and decodes images: call it in a worker thread."""
    messages = []
    for i, message in enumerate(chat.messages):
        where = f"messages[{i}]"
        parts: list[Any] = []
        for j, part in enumerate(_parts(message, where)):
            parts.append(_part(part, f"{where}.content[{j}]", limits))
        role = "system" if message["role"] == "developer" else message["role"]
        messages.append(Message(role=role, content=parts))
    fields = {
        "messages": messages,
        "sampler": chat.sampler,
        "sampler_options": chat.sampler_options,
        "generation": chat.generation,
        "timestamps": chat.timestamps,
        **chat.extra,
    }
    return parse_request({k: v for k, v in fields.items() if v is not None})


def _part(part: dict[str, Any], where: str, limits: ServeLimits) -> Any:
    kind = part["type"]
    if kind == "text":
        text = part.get("text")
        if not isinstance(text, str):
            raise APIError(f"{where}.text must be a string", param=f"{where}.text")
        return TextPart(text=text)
    video = kind in ("video_url", "video")
    if kind in ("video_url", "image_url"):
        value = part.get(kind)
        url = value.get("url") if isinstance(value, dict) else value
        param = f"{where}.{kind}.url" if isinstance(value, dict) else f"{where}.{kind}"
    else:
        key = next((k for k in (kind, "url", "path") if k in part), kind)
        url, param = part.get(key), f"{where}.{key}"
    if not isinstance(url, str) or not url:
        raise APIError(f"{param} must be a URL string", param=param)
    media = media_value(url, video, param, limits.allowed_local_media_path, limits.uploads)
    return VideoPart(video=media) if video else ImagePart(image=media)
