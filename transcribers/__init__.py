"""Built-in transcribers: what is said in a video, as timed segments (whisper)."""
