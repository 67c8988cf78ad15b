"""The decode layer: open a video, probe and index it, decode chosen frames, read the small
features shot detection compares, find shots, drop near-duplicates. Samplers choose frames
over it (through `vidtt.plugin_api`); see docs/architecture.md for its modules."""
