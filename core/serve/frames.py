"""The frames route of `vidtt serve`, which the page at / previews a request with, behind the
API key as chat completions are: `POST /v1/frames` answers the frames a chat completion with
the same fields would give the model, as small JPEG thumbnails with their indices and times,
the shots and transcript found, and the token plan (frames x tokens per frame, the question,
max_new_tokens, against the budget and the model's context).

A frames body is read as a one-video chat request by the server's own rules (`parse_chat`,
`vidtt.serve.admission.read_json`, `vidtt.serve.preparing.prepare`): the same body limit, media
URL and local-path rules, frame limits, sampler and budget checks, and the media work in the
server's pool.
"""

from __future__ import annotations

import base64
import dataclasses
import difflib
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.requests import Request as HTTPRequest
from starlette.responses import JSONResponse

from vidtt.budget.counts import measure, text_tokens
from vidtt.budget.schema import BudgetPlan
from vidtt.errors import VidttError
from vidtt.pipeline.core import with_transcripts
from vidtt.pipeline.request import SAMPLING_KEYS, parse_request
from vidtt.pipeline.resolved import strategy_of
from vidtt.pipeline.speech import Heard
from vidtt.serve.admission import admit, check_key, check_model, deadline_of, read_json, run_timed
from vidtt.serve.errors import APIError, from_vidtt
from vidtt.serve.preparing import prepare
from vidtt.serve.protocol import ChatRequest, ServeLimits, parse_chat
from vidtt.serve.responses import TIME_DECIMALS
from vidtt.types import Clip, VideoPart

if TYPE_CHECKING:
    from vidtt.pipeline.prepared import Prepared
    from vidtt.pipeline.protocol import PipelineLike
    from vidtt.serve.server import Server

THUMB_SIZE, MIN_THUMB, MAX_THUMB = 160, 32, 512  # the thumbnails' longer side, in pixels
JPEG_QUALITY = 80
STAND_IN = "?"  # the question prepared when none is given (a chat request needs some text)
BUDGET_FIELDS = ("max_visual_tokens", "fit")
# the chat-request fields a frames request takes, as a chat request reads them
PASSED = frozenset(
    {*SAMPLING_KEYS, *BUDGET_FIELDS, "sampler", "sampler_options", "timestamps", "model"}
    | {"transcript", "max_transcript_tokens", "max_tokens", "max_completion_tokens"}
)
OWN = frozenset({"video", "question", "thumb_size"})
# where the chat request's errors point, and the frames request's field they are about
RENAMED = (("messages[0].content[0].video", "video"), ("messages[0].content[1].text", "question"))
VIDEO_LABEL = "video 1 ("  # how the pipeline's errors about the (one) video begin


@dataclass
class FramesRequest:
    """A frames request read and checked, its video not yet loaded."""

    chat: ChatRequest  # the one-video chat request it stands for
    question: str | None
    thumb_size: int


def add_routes(app: FastAPI, server: Server) -> None:
    """`POST /v1/frames`."""

    @app.post("/v1/frames")
    async def frames(request: HTTPRequest) -> JSONResponse:
        return JSONResponse(await answer_frames(server, request))


# -- POST /v1/frames ----------------------------------------------------------------------------
async def answer_frames(server: Server, request: HTTPRequest) -> dict[str, Any]:
    """Admit, read and check the body, then prepare and describe the video in the pool."""
    check_key(server, request)
    release = admit(server)
    try:
        deadline = deadline_of(server)
        asked = parse_frames(await read_json(server, request), server.settings.limits)
        check_model(server, asked.chat.model)
        answer: dict[str, Any] = await run_timed(server, preview, deadline, server, asked)
        return answer
    except VidttError as exc:
        raise from_vidtt(exc) from None
    finally:
        release()


def parse_frames(body: Any, limits: ServeLimits) -> FramesRequest:
    """Check a frames body and read it as the chat request it stands for (no media read)."""
    if not isinstance(body, dict):
        raise APIError("the request body must be a JSON object")
    check_fields(body)
    video = body.get("video")
    if not isinstance(video, str) or not video:
        raise APIError(
            "video must be a URL string: http(s), data: or (where the server allows) a local "
            "path or file: URL",
            param="video",
        )
    question = body.get("question")
    if question is not None and not isinstance(question, str):
        raise APIError("question must be a string", param="question")
    question = question if question and question.strip() else None
    content = [{"type": "video", "video": video}, {"type": "text", "text": question or STAND_IN}]
    fields = {k: v for k, v in body.items() if k in PASSED}
    fields.update(messages=[{"role": "user", "content": content}], strategy="direct")
    try:
        chat = parse_chat(fields, limits)
    except APIError as exc:
        raise renamed(exc) from None
    return FramesRequest(chat, question, thumb_size_of(body.get("thumb_size", THUMB_SIZE)))


def check_fields(body: dict[str, Any]) -> None:
    """Refuse a field a frames request does not take, with the nearest known name."""
    known = sorted(OWN | PASSED)
    unknown = sorted(str(k) for k in body if k not in OWN | PASSED)
    if unknown:
        close = difflib.get_close_matches(unknown[0], known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise APIError(
            f"unrecognized request argument {unknown[0][:60]!r}{hint}", param=unknown[0][:60]
        )


def thumb_size_of(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_THUMB <= value <= MAX_THUMB:
        raise APIError(
            f"thumb_size must be an integer between {MIN_THUMB} and {MAX_THUMB}",
            param="thumb_size",
        )
    return value


def renamed(error: APIError) -> APIError:
    """`error` naming the frames request's fields (video, question), not the chat's."""
    for inner, outer in RENAMED:
        error.message = error.message.replace(inner, outer)
        if error.param is not None and error.param.startswith(inner):
            error.param = outer + error.param[len(inner) :]
    if error.param == "messages":  # too many videos: a server that takes none
        error.param = "video"
    if error.param is None and error.message.startswith(VIDEO_LABEL):  # fetch, decode, limits
        error.param = "video"
    return error


def preview(server: Server, asked: FramesRequest) -> dict[str, Any]:
    """In a worker: the request prepared as a chat completion would be, then described."""
    prepared, chat, refused = prepare_frames(server, asked.chat)
    try:
        clip = next(
            p.video for m in prepared.conversation for p in m.content if isinstance(p, VideoPart)
        )
        plan = plan_of(server.pipeline, prepared, clip, refused)
        if refused is not None:  # the budget asked for, which could not be met
            asked_budget = {k: asked.chat.extra.get(k) for k in BUDGET_FIELDS}
            plan["budget"] = {**asked_budget, "limit": None, "plan": None}
        options = options_of(server.pipeline, chat, clip)
    except VidttError as exc:
        raise from_vidtt(exc) from None
    return {
        "object": "frames",
        "video": clip.info.model_dump(),
        "sampler": clip.sampler,
        "options": options,
        "frames_rule": str(clip.metadata.get("frames_rule", "")),
        "timestamps": prepared.timestamps,
        "frames": frames_of(clip, asked.thumb_size),
        "shots": shots_of(clip),
        "transcript": transcript_of(clip),
        "plan": plan,
        "warnings": [*clip.warnings, *notes(server, refused)],
    }


def prepare_frames(
    server: Server, chat: ChatRequest
) -> tuple[Prepared, ChatRequest, APIError | None]:
    """`vidtt.serve.preparing.prepare` (every check a chat request gets). A request whose
    own visual-token budget cannot be met is prepared again without it: then the frames it
    asked for are shown, with the error a chat completion would get."""
    try:
        return prepare(server, chat), chat, None
    except APIError as exc:
        if exc.code != "options_error" or not any(k in chat.extra for k in BUDGET_FIELDS):
            raise renamed(exc) from None
        extra = {k: v for k, v in chat.extra.items() if k not in BUDGET_FIELDS}
        unbudgeted = dataclasses.replace(chat, extra=extra)
        try:
            return prepare(server, unbudgeted), unbudgeted, renamed(exc)
        except APIError:
            raise renamed(exc) from None


def notes(server: Server, refused: APIError | None) -> list[str]:
    """Warnings of the preview itself: frames a chat completion would not use as they are."""
    out = []
    if refused is not None:
        out.append(
            "a chat completion with these fields would be refused (400, see plan.reason); "
            "the frames shown are sampled without its visual-token budget"
        )
    if strategy_of(server.pipeline.config, None) == "segments":
        out.append(
            "this server answers by strategy segments (a timeline of segment notes); these are "
            'the frames of "strategy": "direct"'
        )
    return out


def options_of(pipeline: PipelineLike, chat: ChatRequest, clip: Clip) -> dict[str, Any]:
    """The sampler options the clip was sampled with: the request's over the server's (as
    `Pipeline.sampler_for` merges them), and the budget plan's frame count and size."""
    asked = {"sampler": chat.sampler, "sampler_options": chat.sampler_options}
    sampler, options = pipeline.sampler_for(parse_request({k: v for k, v in asked.items() if v}))
    values = options.model_dump(exclude_none=True)
    budget = clip.metadata.get("budget")
    if budget is not None:
        plan = BudgetPlan.model_validate(budget)
        values.update(plan.sampler_options(sampler.frames_option()))
        if plan.size is not None:
            values.pop("max_side", None)
    return values


# -- the plan -----------------------------------------------------------------------------------
def plan_of(
    pipeline: PipelineLike, prepared: Prepared, clip: Clip, refused: APIError | None
) -> dict[str, Any]:
    """What the model would spend on the request, counted as the visual-token budget counts
    it (`vidtt.budget.counts`), against the budget and the model's context."""
    processor, formatter = pipeline.processor, pipeline.formatter
    n, size = len(clip), (clip.width, clip.height)
    cost = measure(processor, formatter, n, *size)
    heard = [Heard(p.video.transcript) for m in prepared.conversation for p in m.content
             if isinstance(p, VideoPart)]  # fmt: skip
    text = text_tokens(processor, formatter, with_transcripts(prepared.conversation, heard))
    new, context = prepared.options.max_new_tokens, pipeline.engine.context_size()
    total = text + cost.total + new
    fits = refused is None and (context is None or total <= context)
    per = cost.visual / n
    plan = {
        "frames": n,
        "frame_size": list(size),
        "tokens_per_frame": int(per) if per == int(per) else round(per, 2),
        "visual_tokens": cost.visual,
        "video_tokens": cost.total,
        "text_tokens": text,
        "prompt_tokens": text + cost.total,
        "max_new_tokens": new,
        "total": total,
        "context": context,
        "budget": budget_of(clip),
        "fits": fits,
    }
    plan["reason"] = refused.message if refused is not None else reason(plan)
    return plan


def budget_of(clip: Clip) -> dict[str, Any] | None:
    """The budget the frames were planned under, and the planner's sentence; None: none."""
    planned = clip.metadata.get("budget")
    if planned is None:
        return None
    return {**planned["budget"], "limit": planned["limit"], "plan": planned["reason"]}


def reason(plan: dict[str, Any]) -> str:
    """One sentence: what the frames take, and whether the request fits the context."""
    n, (width, height) = plan["frames"], plan["frame_size"]
    frames = "1 frame" if n == 1 else f"{n} frames"
    spent = (
        f"{frames} at {width}x{height} take {plan['visual_tokens']:,} visual tokens "
        f"({plan['tokens_per_frame']:g} per frame)"
    )
    planned = plan["budget"]
    why = f"the visual-token budget: {planned['plan']}" if planned else "no budget set"
    context, need = plan["context"], plan["total"]
    if context is None:
        return f"{spent}; {why}; the model's config declares no context size"
    if plan["fits"]:
        return f"{spent}; {why}; the request needs {need:,} of the {context:,}-token context"
    return (
        f"the prompt needs {plan['prompt_tokens']:,} tokens ({spent}) plus "
        f"max_new_tokens={plan['max_new_tokens']:,}, but the model's context is {context:,} "
        "tokens: sample fewer frames (num_frames, fps), use smaller frames where the model "
        "scales with size, shorten the question or lower max_tokens"
    )


# -- what the page shows --------------------------------------------------------------------------
def frames_of(clip: Clip, side: int) -> list[dict[str, Any]]:
    """Each frame's index, time and JPEG thumbnail (its longer side at most `side`)."""
    out = []
    for frame, index, at in zip(clip.array, clip.indices, clip.timestamps):
        image, width, height = thumbnail(frame, side)
        out.append(
            {
                "index": index,
                "time": round(at, TIME_DECIMALS),
                "width": width,
                "height": height,
                "image": image,
            }
        )
    return out


def thumbnail(frame: Any, side: int) -> tuple[str, int, int]:
    """A frame as a JPEG data: URL, scaled down (never up) to a longer side of `side`."""
    from PIL import Image

    image = Image.fromarray(frame, "RGB")
    scale = side / max(image.size)
    if scale < 1:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return f"data:image/jpeg;base64,{encoded}", image.width, image.height


def shots_of(clip: Clip) -> list[dict[str, Any]]:
    """The shots a scene sampler found (`frames`: positions in the response's frames)."""
    return [
        {
            "start": round(shot.start, TIME_DECIMALS),
            "end": round(shot.end, TIME_DECIMALS),
            "first_frame": shot.first_frame,
            "end_frame": shot.end_frame,
            "boundary": shot.boundary,
            "frames": list(shot.frames),
        }
        for shot in clip.shots
    ]


def transcript_of(clip: Clip) -> list[dict[str, Any]]:
    """What is said in the sampled range, as the prompt will hold it."""
    if clip.transcript is None:
        return []
    return [
        {"start": round(s.start, TIME_DECIMALS), "end": round(s.end, TIME_DECIMALS), "text": s.text}
        for s in clip.transcript.segments
    ]
