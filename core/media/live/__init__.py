"""Live sources (`sources`), read on their own thread (`reader`) into a ring buffer of the last
seconds (`ring`); files still being written are followed as they grow (`follow`)."""
