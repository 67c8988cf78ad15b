"""Deprecated: moved to `vidtt.jobs.ray`."""

from vidtt._moved import alias

alias(__name__, "vidtt.jobs.ray")
