"""Built-in prompt formatters: image-expansion and native-video."""
