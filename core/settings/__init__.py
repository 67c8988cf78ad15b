"""Settings: a run's config, plugin names and frame rule, resolved once and handed on."""
