"""Deprecated: moved to `vidtt.pipeline.request`."""

from vidtt._moved import alias

alias(__name__, "vidtt.pipeline.request")
