"""Media URLs of a chat request, as what a `Pipeline` samples: http(s) URLs as they are
(fetched later under `vidtt.limits`), `data:` URLs as bytes (videos) or PIL images, `upload:`
URLs as the server's copy of an upload (`vidtt.serve.upload_store`), and local paths only inside
the allowed folder (after following symlinks)."""

from __future__ import annotations

import base64
import binascii
import os
import re
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidtt.errors import VidttError
from vidtt.serve.errors import APIError, from_vidtt
from vidtt.urls import printable

if TYPE_CHECKING:
    from vidtt.serve.upload_store import Uploads


def media_value(
    url: str, video: bool, param: str, allowed: Path | None, uploads: Uploads | None = None
) -> Any:
    """What the pipeline reads for one URL: the URL itself (http/https), bytes or a PIL image
    (data:), the upload's file (upload:), or a checked absolute path (file: URLs and paths,
    inside the allowed folder)."""
    scheme = url.split(":", 1)[0].lower() if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", url) else ""
    if scheme in ("http", "https"):
        return url
    if scheme == "upload":
        if not video:
            raise APIError(
                f"{param}: upload: URLs name videos; send images as data: URLs", param=param
            )
        if uploads is None or not uploads.on:
            raise APIError(
                f"{param}: this server takes no uploads; send the video as an http(s) or data: URL",
                param=param,
                code="upload_not_found",
            )
        return uploads.source(url, param)
    if scheme == "data":
        data = decode_data_url(url, video, param)
        return data if video else open_image(data, param)
    if scheme == "file":
        parsed = urllib.parse.urlsplit(url)
        if parsed.netloc not in ("", "localhost"):
            raise APIError(f"{param}: file URLs must name a local path", param=param)
        return local_path(urllib.parse.unquote(parsed.path), param, allowed)
    if scheme and len(scheme) > 1:  # (one letter: a Windows drive)
        raise APIError(
            f"{param}: the URL scheme {scheme!r} is not allowed; use http(s), data:, upload: or "
            "a file inside the server's allowed media folder",
            param=param,
            code="invalid_url",
        )
    return local_path(url, param, allowed)


def local_path(text: str, param: str, allowed: Path | None) -> str:
    """The real path of `text` when it lies inside the allowed folder (symlinks followed;
    relative paths are read from the folder); refused otherwise."""
    if allowed is None:
        raise APIError(
            f"{param}: local files are not served; send an http(s) or data: URL (the server "
            "can allow a folder with --allowed-local-media-path)",
            param=param,
            code="local_path_not_allowed",
        )
    if "\x00" in text:
        raise APIError(
            f"{param}: the path contains a NUL byte (\\x00), which no file name can hold",
            param=param,
        )
    path = Path(text)
    real = Path(os.path.realpath(path if path.is_absolute() else allowed / path))
    if real != allowed and allowed not in real.parents:
        raise APIError(
            f"{param}: {printable(repr(text))} is outside the server's allowed media folder",
            param=param,
            code="local_path_not_allowed",
        )
    if not real.is_file():
        raise APIError(
            f"{param}: no such file {printable(repr(text))} in the allowed media folder",
            param=param,
        )
    return str(real)


DATA_URL = re.compile(r"^data:(?P<type>[^;,]*)(?P<params>(;[^;,]*)*),(?P<data>.*)$", re.S)


def decode_data_url(url: str, video: bool, param: str) -> bytes:
    match = DATA_URL.match(url)
    if not match:
        raise APIError(f"{param}: malformed data: URL", param=param, code="invalid_url")
    mime = match["type"].strip().lower()
    wanted = "video/" if video else "image/"
    if mime and not mime.startswith(wanted) and mime != "application/octet-stream":
        raise APIError(
            f"{param}: a data: URL of type {mime!r} where {wanted}* was expected", param=param
        )
    if "base64" not in [p.strip().lower() for p in match["params"].split(";")]:
        raise APIError(f"{param}: data: URLs must be base64 encoded", param=param)
    try:
        data = base64.b64decode(re.sub(r"\s+", "", match["data"]), validate=True)
    except (binascii.Error, ValueError):
        raise APIError(f"{param}: the data: URL is not valid base64", param=param) from None
    if not data:
        raise APIError(f"{param}: the data: URL is empty", param=param)
    return data


def open_image(data: bytes, param: str) -> Any:
    """A PIL RGB image from encoded bytes, within vidtt's pixel limit (`media.images`)."""
    from vidtt.media.images import load_image

    try:
        return load_image(data, name=param)
    except VidttError as exc:
        error = from_vidtt(exc)
        error.param = param
        raise error from None
