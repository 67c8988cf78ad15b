"""The plugin registry, `vidtt.registry`: the same module as `vidtt.plugins.registry`."""

import sys

from vidtt.plugins import registry

sys.modules[__name__] = registry
