"""The `vidtt` command line: one module per command, each adding its own parser piece."""

from vidtt._lazy import exports

__getattr__ = exports(__name__, {"main": "vidtt.cli.app", "build_parser": "vidtt.cli.app"})
__all__ = ["build_parser", "main"]
