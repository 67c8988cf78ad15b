"""Deprecated: moved to `vidtt.media.fetch`."""

from vidtt._moved import alias

alias(__name__, "vidtt.media.fetch")
