"""URL vocabulary shared by every layer: the schemes vidtt fetches, hiding credentials, and
showing untrusted text (URLs, paths) on one printable line."""

from __future__ import annotations

import re

URL_SCHEMES = ("http", "https")
_USERINFO = re.compile(r"(?<=://)[^/?#@\s]*@")
# characters that end a line or steer a terminal: C0 and C1 controls, DEL, Unicode line and
# paragraph separators (every character `str.splitlines` splits at is among them)
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str) -> str:
    """`text` with every control character written as its escape (`\\n`, `\\x00`, ...): what
    a user gave, shown on one line, in a message that stays one line."""
    return _UNPRINTABLE.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), text)


def redact(text: str) -> str:
    """`text` with the `user:password@` part of every URL in it replaced by `***@`, and its
    control characters escaped (see `printable`): safe to show, on one line."""
    return printable(_USERINFO.sub("***@", text))
