"""URL vocabulary shared by every layer: the schemes vidtt fetches, and hiding credentials."""

from __future__ import annotations

import re

URL_SCHEMES = ("http", "https")
_USERINFO = re.compile(r"(?<=://)[^/?#@\s]*@")


def redact(text: str) -> str:
    """`text` with the `user:password@` part of every URL in it replaced by `***@`."""
    return _USERINFO.sub("***@", text)
