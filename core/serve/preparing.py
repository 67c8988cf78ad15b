"""A chat request's media prepared for `vidtt serve`, in the server's pool: loaded, sampled,
checked against the server's frame limit and counted in the metrics (`prepare`), within the
request's time limit (`prepare_timed`). Chat completions, their streams and the frames route
all prepare this way, so every route gets the same checks and errors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vidtt.errors import OptionsError, UnknownNameError, VidttError
from vidtt.pipeline.speech import interruptible
from vidtt.serve.admission import run_timed, timeout
from vidtt.serve.errors import APIError, from_vidtt
from vidtt.serve.protocol import ChatRequest, build_request, param_of
from vidtt.serve.streams import Stopped, Stopper

if TYPE_CHECKING:
    from vidtt.pipeline.prepared import Prepared
    from vidtt.serve.server import Server


async def prepare_timed(server: Server, chat: ChatRequest, deadline: float) -> Prepared:
    """`prepare` in a worker, within the deadline; however it ends (504, the client gone),
    the worker stops at its next note or window of audio transcribed."""
    stopper = Stopper(deadline)
    try:
        prepared: Prepared = await run_timed(server, prepare, deadline, server, chat, stopper)
        return prepared
    except Stopped:  # its deadline passed in the worker first
        raise timeout(server) from None
    finally:
        stopper.stop()


def prepare(server: Server, chat: ChatRequest, progress: Stopper | None = None) -> Prepared:
    """In a worker: load the media, sample the videos, count the frames (`progress` hears
    the segment notes made, under strategy segments, and stops the notes and the
    transcription once stopped or late: `Stopper`)."""
    heard: dict[str, Any] = {"progress": progress} if progress is not None else {}
    settings = server.settings
    try:
        with interruptible(progress.check if progress is not None else None):
            prepared = server.pipeline.prepare(
                build_request(chat, settings.limits), settings.timestamps, **heard
            )
    except Stopped:
        if progress is not None:
            progress.check()  # this request's own stop: nobody waits for it
        raise APIError(  # it waited on work (a transcript) that another request stopped
            "the request shared work with a request that was stopped: try again",
            503,
            "server_busy",
            code="shared_work_stopped",
            headers={"Retry-After": "1"},
        ) from None
    except VidttError as exc:
        raise refusal(server, chat, exc) from None
    server.metrics.sampled(prepared)
    check_frames(prepared.frames(), settings.limits.max_frames)
    return prepared


def refusal(server: Server, chat: ChatRequest, exc: VidttError) -> APIError:
    """The error answer of a request the pipeline refused, naming the field it was about."""
    error = from_vidtt(exc)
    if isinstance(exc, OptionsError):
        error.param = param_of(str(exc), chat.params)
    elif isinstance(exc, UnknownNameError):
        installed = server.pipeline.registry.names("samplers")
        if chat.sampler is not None and chat.sampler not in installed:
            error.param = "sampler"
    return error


def check_frames(frames: int, limit: int) -> None:
    """Refuse a request whose videos gave more frames than the server takes."""
    if frames > limit:
        raise APIError(
            f"the request's videos gave {frames} frames, over this server's limit of "
            f"{limit} per request: ask for fewer (num_frames, fps) or a shorter span "
            "(start, end)",
            param="messages",
            code="too_many_frames",
        )
