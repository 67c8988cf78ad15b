"""One error hierarchy: every user mistake is a `VidttError` whose message says what to do."""

from __future__ import annotations


class VidttError(Exception):
    """Base of every error vidtt raises on purpose."""


class PluginError(VidttError):
    """A plugin failed to load, or its hook raised (raised only in strict mode)."""


class RegistryError(VidttError):
    """A registration was refused: wrong type, empty name, or a duplicate name."""


class UnknownNameError(RegistryError, LookupError):
    """A sampler, formatter or backend name that nothing registered."""


class ConfigError(VidttError):
    """A pipeline config (file or dict) is invalid."""


class OptionsError(VidttError, ValueError):
    """Options given to a sampler, formatter or generation are invalid."""


class SourceError(VidttError):
    """A video source cannot be opened: missing file, bad URL, refused scheme, too large."""


class NoAudioError(SourceError):
    """The video has no audio stream (or none that can be decoded)."""


class LimitError(VidttError):
    """A video or download went past a configured limit (see `vidtt.limits`)."""


class DecodeError(VidttError):
    """A video source opened but holds no decodable video."""


class BackendUnavailableError(VidttError):
    """A backend was asked for by name but cannot run here."""


class DtypeError(VidttError, ValueError):
    """A dtype the chosen backend does not support."""


class ModelLoadError(VidttError):
    """A model or processor could not be loaded."""


class FormatterError(VidttError):
    """No formatter fits the model, or a conversation cannot be formatted."""


class ContextOverflowError(VidttError):
    """Prompt plus visual tokens do not fit the model's context."""


class GenerationError(VidttError):
    """Generation failed."""


class RemoteServerError(VidttError):
    """A server asked to answer requests cannot be reached, refuses the key, or cannot take
    the job as asked."""


class LibraryError(VidttError):
    """A video library cannot be opened, written or searched as asked."""


class LibraryMismatchError(LibraryError):
    """A library opened with another embedder or vector size than it was indexed with."""
