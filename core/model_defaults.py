"""Deprecated: moved to `vidtt.settings.frame_rule`."""

from vidtt._moved import alias

alias(__name__, "vidtt.settings.frame_rule")
