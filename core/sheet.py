"""Deprecated: moved to `vidtt.media.sheet`."""

from vidtt._moved import alias

alias(__name__, "vidtt.media.sheet")
