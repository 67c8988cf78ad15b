"""Deprecated: moved to `vidtt.media.frame_cache`."""

from vidtt._moved import alias

alias(__name__, "vidtt.media.frame_cache")
