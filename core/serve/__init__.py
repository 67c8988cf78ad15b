"""`vidtt serve`: the OpenAI-compatible protocol, the app, batching and streams."""
