"""Where a library lives: a name (under `VIDTT_LIBRARY_DIR`), a folder, or a URI LanceDB
opens (`s3://bucket/prefix`, `gs://...`, `az://...`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from vidtt import envs
from vidtt.errors import LibraryError

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True)
class Location:
    """A library's URI for LanceDB, and its local folder (None on object storage)."""

    uri: str
    folder: Path | None

    @property
    def local(self) -> bool:
        return self.folder is not None


def libraries_dir() -> Path:
    """`$VIDTT_LIBRARY_DIR`, else `libraries/` in the cache folder (`~/.cache/vidtt`)."""
    given = envs.get("VIDTT_LIBRARY_DIR")
    return Path(given) if given is not None else envs.cache_dir() / "libraries"


def locate(name_or_uri: str) -> Location:
    """A name (letters, digits, `.`, `_`, `-`; not starting with `.`) is a library in
    `libraries_dir()`; text with `://` is a URI (`file://` read as a folder); anything else
    (`./lib`, `/data/lib`, `~/lib`) is a folder."""
    text = str(name_or_uri).strip()
    if not text:
        raise LibraryError("a library needs a name, a folder or a URI: give one")
    if text.startswith("file://"):
        text = text[len("file://") :]
    elif "://" in text:
        return Location(text.rstrip("/"), None)
    if NAME.fullmatch(text):
        folder = libraries_dir() / text
    elif text in (".", "..") or "/" in text or "\\" in text or text.startswith("~"):
        folder = Path(text).expanduser().resolve()
    else:
        raise LibraryError(
            f"{text!r} is not a library name (letters, digits, '.', '_', '-'): "
            "give a name, a folder (./lib) or a URI (s3://bucket/lib)"
        )
    return Location(str(folder), folder)
