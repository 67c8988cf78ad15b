"""Deprecated: moved to `vidtt.serve.app`."""

from vidtt._moved import alias

alias(__name__, "vidtt.serve.app")
