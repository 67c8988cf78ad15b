"""The `vidtt` command line: one module per command, each adding its own parser piece."""

from vidtt._lazy import exports

__getattr__ = exports(__name__, {"main": "vidtt.cli.main", "build_parser": "vidtt.cli.main"})
__all__ = ["build_parser", "main"]
