"""Answer a `vidtt run` job with a running server: `vidtt serve`, or any OpenAI-compatible
chat-completions server (vLLM, ...), instead of a model loaded here.

Each request becomes one `POST /v1/chat/completions`: its question (or conversation) with each
video as a `video_url` part, its generation options under OpenAI's names (`max_new_tokens` ->
`max_tokens`, `temperature`, `top_p`, `seed`, `stop`; greedy, `temperature: 0`, unless told
otherwise), and vidtt's own fields (`num_frames`, `start`, `end`, `sampler`, `timestamps`,
`max_visual_tokens`, `transcript`, `strategy`, ...) at the top level of the body. `fields` go
under each request's own (vidtt's generation names are translated there too).

Records are `vidtt run`'s (`vidtt.jobs.records`), appended as they come and compacted at the
end (Ctrl-C too), so a rerun answers only what is left: `text`, `finish_reason`, `usage`
(`visual_tokens` None where the server does not say), `timings` and `videos` (the frames used)
from the response's `vidtt` object (empty from other servers), `model`, and `latency`: the
seconds the client waited for the answer (the last try's, uploads not included).

Which server: a vidtt server lists its model with `"owned_by": "vidtt"` in `GET /v1/models`;
its limits (body size, uploads, local files) are then read from `GET /v1/ui/config`. How
videos reach it (`media`):

- `upload`: each distinct file once with `POST /v1/uploads` (streamed from the file), then
  `upload:ID` (uploaded again once if the server lost it); deleted when its last question is
  answered. vidtt servers only.
- `data`: a base64 `data:` URL, streamed into the body; a file over `DATA_LIMIT` (a vidtt
  server: what its body limit holds) is refused before anything is sent.
- `file`: a `file://` URL; the server must see this filesystem and allow the folder.
- `auto`: `upload` for a vidtt server that takes uploads, else `data`.

Images always go as `data:` URLs (`file://` with `media="file"`). Before anything is sent the
server must answer `GET /v1/models` with the key, and a server other than vidtt is refused a
job whose questions need vidtt's own fields: it would ignore clip bounds and sampling and be
scored on the wrong frames. 429 and 503 are retried after their `Retry-After` (at most
`RETRIES` times, `MAX_WAIT` seconds each); any other failure is that request's error record.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import json
import mimetypes
import re
import time
import urllib.parse
import uuid
from collections import Counter as Tally
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from vidtt.errors import OptionsError, RemoteServerError, SourceError, VidttError
from vidtt.eval.remote import retry_after
from vidtt.jobs.local import JobPlan, Summary, recording
from vidtt.jobs.records import error_text
from vidtt.pipeline.request import PASSED_OPTIONS, SAMPLING_KEYS, Request
from vidtt.types import ImagePart, TextPart, VideoPart

__all__ = ["DATA_LIMIT", "MEDIA", "answer_on_server"]

MEDIA = ("auto", "upload", "data", "file")
VIDTT_DETAILS = ("formatter", "strategy", "segments", "peak_memory")  # kept as they come
DATA_LIMIT = 48 << 20  # bytes of a file sent as a data: URL (its base64 fits a 64 MiB body)
BODY_SLACK = 1 << 16  # what a body holds beside its data: URLs, at most
RETRIES, MAX_WAIT = 5, 60.0  # tries after a 429 or 503, and the longest wait before one
PROBE_TIMEOUT = 30.0  # seconds for GET /v1/models and /v1/ui/config
BLOCK = 3 << 18  # bytes read at a time (a multiple of 3: base64 pieces join up)
# Fields only vidtt reads; another server ignores them.
VIDTT_FIELDS = SAMPLING_KEYS | {"sampler", "sampler_options", *PASSED_OPTIONS}
RENAMED = {"max_new_tokens": "max_tokens", "min_new_tokens": "min_tokens"}
SENT = {"max_tokens", "min_tokens", "temperature", "top_p", "top_k", "seed", "stop"}
SENT |= {"repetition_penalty"}
NEUTRAL = {"num_beams": 1}  # generation options that change nothing at this value
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")  # (one letter: a Windows drive, a path)


@dataclass(frozen=True)
class Server:
    """What `GET /v1/models` (and a vidtt server's `/v1/ui/config`) said."""

    base: str
    model: str
    vidtt: bool
    max_body: int | None = None  # bytes; None: not said
    uploads: bool = False
    max_upload: int | None = None
    local_media: bool | None = None  # None: not said


@dataclass
class Ask:
    """One request as a chat body; its media parts hold the request's sources until sent."""

    rid: Any
    body: dict[str, Any]

    def parts(self, body: dict[str, Any] | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        """(video_url or image_url, part) for each media part of `body` (default: its own)."""
        for message in (self.body if body is None else body)["messages"]:
            for part in message["content"]:
                if part["type"] in ("video_url", "image_url"):
                    yield part["type"], part

    def videos(self) -> set[Path]:
        """The local video files it names."""
        found = (local_path(p[k]["url"]) for k, p in self.parts() if k == "video_url")
        return {path for path in found if path is not None}


def answer_on_server(
    url: str,
    job: JobPlan,
    *,
    model: str | None = None,
    api_key: str | None = None,
    fields: Mapping[str, Any] | None = None,
    concurrency: int = 4,
    media: str = "auto",
    timeout: float = 600.0,
    progress: bool = True,
) -> Summary:
    """Answer what `job` has left with the server at `url` (its base, with or without
    `/v1`), `concurrency` requests at a time; `RemoteServerError` (nothing sent, nothing
    written) when the server cannot be reached, refuses the key, or cannot take the job."""
    if media not in MEDIA:
        raise OptionsError(f"media must be one of {', '.join(MEDIA)}, not {media!r}")
    if concurrency < 1 or timeout <= 0:
        raise OptionsError("concurrency must be at least 1 and timeout above 0")
    asks = [(rid, ask_of(rid, r) if isinstance(r, Request) else r) for rid, r in job.todo]
    extra = body_fields(dict(fields or {}))
    run = Run(base_url(url), job, extra, concurrency, media, timeout, api_key)
    if not any(isinstance(a, Ask) for _, a in asks):  # nothing for a server: no need of one
        return run.write_all([{"id": rid, "error": a} for rid, a in asks], progress)
    return asyncio.run(run.start(model, asks, progress))


def base_url(url: str) -> str:
    """`url` as the server's base (`http://host:port`, no `/v1`, no trailing slash)."""
    text = url.strip().rstrip("/")
    if "://" not in text:
        text = f"http://{text}"
    if urllib.parse.urlsplit(text).scheme not in ("http", "https"):
        raise RemoteServerError(f"the server URL {url!r} is not http(s): give http://HOST:PORT")
    return text.removesuffix("/v1")


# -- requests as chat bodies ------------------------------------------------------------------
def ask_of(rid: Any, request: Request) -> Ask | str:
    """The chat body of `request` (model and media still to fill in), or why it has none."""
    try:
        messages = [
            {"role": m.role, "content": [part_of(p) for p in m.content]}
            for m in request.conversation()
        ]
        own = {**generation_body(request.generation), **vidtt_body(request)}
    except VidttError as exc:
        return error_text(exc)
    return Ask(rid, {"messages": messages, **own})


def part_of(part: Any) -> dict[str, Any]:
    """One content part as OpenAI writes it; media by path or URL only."""
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    kind, value = (
        ("video_url", part.video) if isinstance(part, VideoPart) else ("image_url", part.image)
    )
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str) or not isinstance(part, (VideoPart, ImagePart)):
        raise OptionsError(f"a {kind[:5]} sent to a server must be a path or a URL")
    return {"type": kind, kind: {"url": value}}


def generation_body(options: Mapping[str, Any]) -> dict[str, Any]:
    """vidtt's generation options under OpenAI's names; `do_sample: false` is temperature 0."""
    out: dict[str, Any] = {}
    for key, value in options.items():
        name = RENAMED.get(key, key)
        if key == "do_sample" or NEUTRAL.get(key, object()) == value:
            continue
        if name not in SENT:
            raise OptionsError(
                f"the generation option {key!r} has no chat-completions field: leave it out "
                "to ask a server"
            )
        out[name] = value
    if options.get("do_sample") is False:
        out = {k: v for k, v in out.items() if k not in ("top_p", "top_k")}
        out["temperature"] = 0
    elif options.get("do_sample") and "temperature" not in out:
        out["temperature"] = 1.0
    return out


def vidtt_body(request: Request) -> dict[str, Any]:
    """The request's sampling and vidtt options as vidtt's top-level body fields."""
    options = dict(request.sampler_options)
    out = {k: options.pop(k) for k in list(options) if k in SAMPLING_KEYS}
    if options:
        out["sampler_options"] = options
    if request.sampler:
        out["sampler"] = request.sampler
    out.update({k: getattr(request, k) for k in PASSED_OPTIONS if getattr(request, k)})
    return out


def body_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """`fields` as body fields: greedy unless they say otherwise, vidtt's generation names
    (`max_new_tokens`, `do_sample`, ...) translated."""
    names = {"do_sample", "num_beams", *RENAMED}
    generation = {k: fields.pop(k) for k in list(fields) if k in names}
    return {"temperature": 0, **fields, **generation_body(generation)}


def local_path(source: str) -> Path | None:
    """The local file a media source names (a path or `file://` URL); None for a URL."""
    if source.startswith("file://"):
        return Path(urllib.parse.unquote(urllib.parse.urlsplit(source).path))
    return None if SCHEME.match(source) else Path(source).expanduser()


def media_type(path: Path, kind: str) -> str:
    guessed = mimetypes.guess_type(path.name)[0] or ""
    wanted = "video/" if kind == "video_url" else "image/"
    return guessed if guessed.startswith(wanted) else "application/octet-stream"


# -- the server, before anything is sent ------------------------------------------------------
async def inspect(client: Any, base: str, model: str | None, keyed: bool) -> Server:
    """The server's model and kind; `RemoteServerError` when it cannot take requests."""
    import httpx

    try:
        response = await client.get(f"{base}/v1/models", timeout=PROBE_TIMEOUT)
    except httpx.HTTPError as exc:
        raise RemoteServerError(
            f"cannot reach the server at {base} ({reason(exc)}): start it (vidtt serve ...) "
            "or check the URL"
        ) from None
    if response.status_code in (401, 403):
        what = "refused the API key" if keyed else "needs an API key"
        raise RemoteServerError(
            f"the server at {base} {what} ({message_of(response)}): pass its key (--api-key)"
        )
    cards = models_of(response, base)
    ids = [str(card.get("id")) for card in cards]
    if model is not None and model not in ids:
        raise RemoteServerError(
            f"the server at {base} does not serve {model!r} (it serves {', '.join(ids[:5])}): "
            "name one of those, or none"
        )
    chosen = model if model is not None else ids[0]
    mine = any(c.get("owned_by") == "vidtt" for c in cards if str(c.get("id")) == chosen)
    if not mine:
        return Server(base, chosen, vidtt=False)
    return await vidtt_server(client, base, chosen)


def models_of(response: Any, base: str) -> list[dict[str, Any]]:
    """The model cards of a `GET /v1/models` answer."""
    if response.status_code != 200:
        raise RemoteServerError(
            f"the server at {base} answered GET /v1/models with {response.status_code} "
            f"({message_of(response)}): give the base URL of an OpenAI-compatible server"
        )
    try:
        cards = [c for c in response.json()["data"] if isinstance(c, dict) and "id" in c]
    except (ValueError, KeyError, TypeError):
        cards = []
    if not cards:
        raise RemoteServerError(
            f"the server at {base} lists no model at GET /v1/models: give the base URL of an "
            "OpenAI-compatible server that serves one"
        )
    return cards


async def vidtt_server(client: Any, base: str, model: str) -> Server:
    """A vidtt server, with the limits its `/v1/ui/config` says (defaults where it says none)."""
    import httpx

    config: dict[str, Any] = {}
    with contextlib.suppress(httpx.HTTPError, ValueError):
        response = await client.get(f"{base}/v1/ui/config", timeout=PROBE_TIMEOUT)
        if response.status_code == 200 and isinstance(response.json(), dict):
            config = response.json()
    if config.get("object") != "ui.config":
        return Server(base, model, vidtt=True, uploads=True)
    return Server(
        base,
        model,
        vidtt=True,
        max_body=config.get("max_body_bytes"),
        uploads=config.get("max_upload_bytes") is not None,
        max_upload=config.get("max_upload_bytes"),
        local_media=config.get("local_media"),
    )


def mode_of(server: Server, media: str) -> str:
    """How videos reach `server` (`auto` decided); refuses a way it cannot take."""
    name, base = f"media {media!r}", server.base
    if media == "auto":
        return "upload" if server.vidtt and server.uploads else "data"
    if media == "upload" and not server.vidtt:
        raise RemoteServerError(
            f"{name} needs a vidtt server and {base} is not one: use media 'data' or 'file'"
        )
    if media == "upload" and not server.uploads:
        raise RemoteServerError(
            f"the server at {base} takes no uploads (--max-uploads-mb 0): use media 'data' "
            "or 'file'"
        )
    if media == "file" and server.local_media is False:
        raise RemoteServerError(
            f"the server at {base} serves no local files: start it with "
            "--allowed-local-media-path FOLDER (the videos' folder), or use media 'upload'"
        )
    return media


def check_job(server: Server, asks: list[Ask], mode: str) -> None:
    """Refuse, before anything is sent, questions the server would answer wrongly or not
    take at all: vidtt's fields for another server, files too large to send."""
    if not server.vidtt:
        for ask in asks:  # the spans are read from the answer's text here instead
            ask.body.pop("spans", None)
        needing = [a for a in asks if VIDTT_FIELDS & set_fields(a.body)]
        if needing:
            names = sorted({k for a in needing for k in VIDTT_FIELDS & set_fields(a.body)})
            raise RemoteServerError(
                f"{len(needing)} of {len(asks)} questions need vidtt's own fields "
                f"({', '.join(names)}), which {server.base}, not a vidtt server, would ignore "
                "(answering about the wrong clip or frames): ask a vidtt server (vidtt serve)"
            )
    if mode in ("data", "upload"):
        check_sizes(server, asks, mode)


def set_fields(body: dict[str, Any]) -> set[str]:
    """The fields `body` sets (to anything but null or false)."""
    return {k for k, v in body.items() if v is not None and v is not False}


def check_sizes(server: Server, asks: list[Ask], mode: str) -> None:
    """Refuse files over what one request (data) or upload can carry to the server."""
    if mode == "data":
        body = server.max_body
        limit = (body - BODY_SLACK) * 3 // 4 if body else DATA_LIMIT
        files = {local_path(p[k]["url"]) for a in asks for k, p in a.parts()}
        how = "a data: URL"
        hint = "use media 'upload' (a vidtt server) or 'file' (a server on this filesystem)"
    else:
        limit = server.max_upload or 0
        files = {p for a in asks for p in a.videos()}
        how, hint = "an upload", "raise the server's --max-body-mb and --max-uploads-mb"
    large = sorted(p for p in files if p and limit and p.is_file() and p.stat().st_size > limit)
    if large:
        raise RemoteServerError(
            f"{len(large)} media file(s) are larger than the {limit / (1 << 20):.1f} MiB "
            f"{how} can carry to {server.base} (first: {large[0]}): {hint}"
        )


# -- answering --------------------------------------------------------------------------------
class Refused(Exception):
    """A request the server answered with an error (after any retries)."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(f"the server answered {status}: {message}")
        self.status, self.code = status, code


@dataclass
class Run:
    """One job answered by one server."""

    base: str
    job: JobPlan
    fields: dict[str, Any]
    concurrency: int
    media: str
    timeout: float
    api_key: str | None
    client: Any = None
    server: Server | None = None
    mode: str = "data"
    uploads: Uploads | None = None

    async def start(
        self, model: str | None, asks: list[tuple[Any, Ask | str]], progress: bool
    ) -> Summary:
        """Check the server and the job, then answer every request."""
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        limits = httpx.Limits(max_connections=self.concurrency + 2)
        async with httpx.AsyncClient(
            headers=headers, timeout=httpx.Timeout(self.timeout), limits=limits
        ) as self.client:
            self.server = await inspect(self.client, self.base, model, bool(self.api_key))
            self.mode = mode_of(self.server, self.media)
            mine = [a for _, a in asks if isinstance(a, Ask)]
            for ask in mine:
                ask.body = {"model": self.server.model, **self.fields, **ask.body}
            check_job(self.server, mine, self.mode)
            if self.mode == "upload":
                self.uploads = Uploads(self, Tally(p for a in mine for p in a.videos()))
            return await self.answer(asks, progress)

    async def answer(self, asks: list[tuple[Any, Ask | str]], progress: bool) -> Summary:
        """Every request answered, `concurrency` at a time, each record written as it comes."""
        with self.output(progress) as write:
            for rid, ask in asks:
                if isinstance(ask, str):
                    write({"id": rid, "error": ask})
            waiting = (a for _, a in asks if isinstance(a, Ask))
            running: set[asyncio.Task[dict[str, Any]]] = set()
            try:
                while True:
                    for ask in waiting:
                        running.add(asyncio.create_task(self.answer_one(ask)))
                        if len(running) >= self.concurrency:
                            break
                    if not running:
                        return self.job.summary
                    done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        write(task.result())
            finally:
                for task in running:
                    task.cancel()
                await asyncio.gather(*running, return_exceptions=True)

    def output(self, progress: bool) -> Any:
        """`vidtt run`'s writer of the job's records (`jobs.local.recording`)."""
        return recording(self.job, "vidtt server", progress)

    def write_all(self, records: list[dict[str, Any]], progress: bool) -> Summary:
        with self.output(progress) as write:
            for record in records:
                write(record)
        return self.job.summary

    async def answer_one(self, ask: Ask) -> dict[str, Any]:
        """The record of one request: the answer, or the error it got instead."""
        import httpx

        try:
            reply, seconds = await self.ask_again_if_lost(ask)
            record = record_of(ask.rid, reply, seconds, self.server.model if self.server else "")
        except Refused as exc:
            record = {"id": ask.rid, "error": str(exc)}
        except httpx.TimeoutException:
            message = f"no answer from {self.base} within {self.timeout:g} s"
            record = {"id": ask.rid, "error": message}
        except httpx.HTTPError as exc:
            record = {"id": ask.rid, "error": f"lost the server at {self.base}: {reason(exc)}"}
        except (VidttError, OSError, ValueError) as exc:
            record = {"id": ask.rid, "error": error_text(exc)}
        if self.uploads is not None:
            await self.uploads.done_with(ask.videos())
        return record

    async def ask_again_if_lost(self, ask: Ask) -> tuple[dict[str, Any], float]:
        """The server's reply and its seconds; an upload the server lost is sent again once."""
        body, data, used = await self.resolve(ask)
        try:
            return await self.chat(body, data)
        except Refused as exc:
            if exc.code != "upload_not_found" or not used or self.uploads is None:
                raise
        for path, url in used.items():
            self.uploads.forget(path, url)
        body, data, _ = await self.resolve(ask)
        return await self.chat(body, data)

    async def resolve(self, ask: Ask) -> tuple[dict[str, Any], dict[str, Path], dict[Path, str]]:
        """`ask`'s body with its local media as the mode sends them: the body, the files to
        stream in as data: URLs (by their placeholder), the uploads named (by file)."""
        body = copy.deepcopy(ask.body)
        data: dict[str, Path] = {}
        used: dict[Path, str] = {}
        for kind, part in ask.parts(body):
            path = local_path(part[kind]["url"])
            if path is None:
                continue
            if self.mode == "file":
                part[kind]["url"] = path.absolute().as_uri()
                continue
            if not path.is_file():
                raise SourceError(f"{kind[:5]} not found: {path}")
            if kind == "video_url" and self.uploads is not None:
                part[kind]["url"] = used[path] = await self.uploads.url(path)
            else:
                token = f"vidtt-data-{uuid.uuid4().hex}"
                data[token] = path
                part[kind]["url"] = f"data:{media_type(path, kind)};base64,{token}"
        return body, data, used

    async def chat(self, body: dict[str, Any], data: dict[str, Path]) -> tuple[dict, float]:
        """`POST /v1/chat/completions` of `body` (`data` streamed in): the reply and its
        seconds."""
        pieces, length = encoded(body, data)
        headers = {"Content-Type": "application/json", "Content-Length": str(length)}
        response, seconds = await self.send(
            "POST", "/v1/chat/completions", lambda: streamed(pieces), headers
        )
        reply = response.json()
        if not isinstance(reply, dict):
            raise ValueError("the server's answer is not a JSON object")
        return reply, seconds

    async def send(
        self,
        method: str,
        path: str,
        content: Callable[[], AsyncIterator[bytes]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[Any, float]:
        """A request to the server, tried again after a 429 or 503 (waiting as its
        Retry-After says, within bounds): the 2xx response and its seconds, else `Refused`."""
        for tries in range(RETRIES + 1):
            started = time.monotonic()
            response = await self.client.request(
                method,
                self.base + path,
                content=content() if content else None,
                headers=headers,
            )
            seconds = time.monotonic() - started
            if response.is_success:
                return response, seconds
            if response.status_code not in (429, 503) or tries == RETRIES:
                raise Refused(response.status_code, message_of(response), code_of(response))
            await asyncio.sleep(wait_of(response, tries))
        raise AssertionError("unreachable")


class Uploads:
    """The videos uploaded for a run: each file once (its requests wait for the one upload),
    deleted from the server once its last request is answered."""

    def __init__(self, run: Run, left: Tally[Path]) -> None:
        self.run, self.left = run, left
        self.made: dict[Path, asyncio.Future[str]] = {}

    async def url(self, path: Path) -> str:
        """The `upload:` URL of `path`, uploading it if no request did yet."""
        made = self.made.get(path)
        if made is None:
            made = self.made[path] = asyncio.ensure_future(self.upload(path))
        return await asyncio.shield(made)

    async def upload(self, path: Path) -> str:
        size = path.stat().st_size
        headers = {"Content-Type": media_type(path, "video_url"), "Content-Length": str(size)}
        try:
            response, _ = await self.run.send("POST", "/v1/uploads", lambda: read(path), headers)
        except Refused as exc:
            raise SourceError(f"uploading {path} failed: {exc}") from None
        url = response.json().get("url")
        if not isinstance(url, str) or not url.startswith("upload:"):
            raise ValueError(f"the server's answer to the upload of {path} has no upload: URL")
        return url

    def forget(self, path: Path, url: str) -> None:
        """Upload `path` again when next asked, unless another request already did."""
        made = self.made.get(path)
        if made is not None and uploaded(made) == url:
            del self.made[path]

    async def done_with(self, paths: Iterable[Path]) -> None:
        """One request fewer for each of `paths`; an upload none needs now is deleted."""
        import httpx

        for path in paths:
            self.left[path] -= 1
            made = self.made.get(path)
            url = uploaded(made) if made is not None else None
            if self.left[path] > 0 or url is None:
                continue
            ident = url.removeprefix("upload:")
            with contextlib.suppress(httpx.HTTPError, Refused):
                await self.run.send("DELETE", f"/v1/uploads/{ident}")


def uploaded(made: asyncio.Future[str]) -> str | None:
    """The URL of an upload done well; None while it runs, or when it failed."""
    if not made.done() or made.cancelled() or made.exception() is not None:
        return None
    return made.result()


# -- bodies, replies and errors ---------------------------------------------------------------
def encoded(body: dict[str, Any], data: dict[str, Path]) -> tuple[list[bytes | Path], int]:
    """`body` as JSON in pieces, each data: placeholder a file to stream as base64 in its
    place; and the body's length in bytes."""
    text = json.dumps(body, ensure_ascii=False).encode()
    pieces: list[bytes | Path] = []
    length, at = 0, 0
    if data:
        tokens = re.compile("|".join(re.escape(token) for token in data).encode())
        for match in tokens.finditer(text):
            path = data[match.group().decode()]
            pieces += [text[at : match.start()], path]
            length += (path.stat().st_size + 2) // 3 * 4
            at = match.end()
    pieces.append(text[at:])
    return pieces, length + sum(len(p) for p in pieces if isinstance(p, bytes))


async def streamed(pieces: list[bytes | Path]) -> AsyncIterator[bytes]:
    """The body's bytes, each file read a block at a time as base64."""
    for piece in pieces:
        if isinstance(piece, bytes):
            yield piece
            continue
        async for block in read(piece):
            yield base64.b64encode(block)


async def read(path: Path) -> AsyncIterator[bytes]:
    """The bytes of `path`, a block at a time (read off the event loop)."""
    handle: IO[bytes]
    with path.open("rb") as handle:
        while block := await asyncio.to_thread(handle.read, BLOCK):
            yield block


def record_of(rid: Any, reply: dict[str, Any], seconds: float, model: str) -> dict[str, Any]:
    """`vidtt run`'s record of a chat completion, with the seconds it took (`latency`)."""
    choices = reply.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ValueError("the server's answer has no choices")
    choice = choices[0]
    usage, details = (reply.get(k) for k in ("usage", "vidtt"))
    usage = usage if isinstance(usage, dict) else {}
    details = details if isinstance(details, dict) else {}
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    record = {
        "id": rid,
        "text": (choice.get("message") or {}).get("content") or "",
        "finish_reason": choice.get("finish_reason"),
        "usage": {
            "prompt_tokens": usage.get("prompt_tokens"),
            "visual_tokens": usage.get("visual_tokens"),
            "generated_tokens": usage.get("completion_tokens"),
            "cached_tokens": cached,
        },
        "timings": details.get("timings") or {},
        "videos": details.get("videos") or [],
        "model": reply.get("model") or model,
        "latency": round(seconds, 6),
    }
    record.update({k: details[k] for k in VIDTT_DETAILS if k in details})
    return record


def message_of(response: Any) -> str:
    """The server's words in an error answer (OpenAI's, vLLM's or FastAPI's shape), one line."""
    try:
        data = response.json()
    except ValueError:
        data = None
    found: Any = None
    if isinstance(data, dict):
        error = data.get("error")
        found = error.get("message") if isinstance(error, dict) else error
        found = found or data.get("message") or data.get("detail")
    text = str(found or response.text or response.reason_phrase or response.status_code)
    return " ".join(text.split())[:500]


def code_of(response: Any) -> str | None:
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        code = response.json()["error"].get("code")
        return str(code) if code is not None else None
    return None


def wait_of(response: Any, tries: int) -> float:
    """Seconds to wait before trying again: Retry-After (seconds or a date), else 1, 2, 4..."""
    return retry_after(response.headers.get("retry-after"), tries, MAX_WAIT)


def reason(exc: BaseException) -> str:
    """A transport error in a few words."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text or type(exc).__name__
