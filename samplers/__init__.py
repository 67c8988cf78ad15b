"""Built-in frame samplers on PyAV: uniform, keyframe, interval."""
