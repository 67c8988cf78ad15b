"""The jobs tests' shared fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster of 2 CPUs, for the module's tests."""
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()
