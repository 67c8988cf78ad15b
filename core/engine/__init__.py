"""The engine: loading a model and processor, generating, streaming, stopping."""

from vidtt._lazy import exports

__getattr__ = exports(__name__, {"Engine": "vidtt.engine.core"})
__all__ = ["Engine"]
