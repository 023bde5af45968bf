"""Development helpers, not used by a production worker: the demo behind ``make run``, the local
fake provider server, and helpers that start real worker and beat processes."""
