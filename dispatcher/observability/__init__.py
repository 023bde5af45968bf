"""What an operator sees: structured logs (``logging``), Prometheus metrics (``metrics``), and the
redaction of secrets from every log record (``redaction``)."""
