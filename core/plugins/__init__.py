"""Plugins: hook specs, entry-point discovery, the registry, and choosing a backend or formatter."""
