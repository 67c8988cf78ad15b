"""Deprecated: moved to `vidtt.engine.loading`."""

from vidtt._moved import alias

alias(__name__, "vidtt.engine.loading")
