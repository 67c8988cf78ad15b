"""Deprecated: moved to `vidtt.engine.generate`."""

from vidtt._moved import alias

alias(__name__, "vidtt.engine.generate")
