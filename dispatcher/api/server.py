"""``dispatcher api``: uvicorn serving the application, one or more worker processes."""

from __future__ import annotations

import gc

import uvicorn
from starlette.types import ASGIApp

from dispatcher.api.app import create_app, served
from dispatcher.config import get_settings
from dispatcher.observability.logging import configure_logging
from dispatcher.observability.redaction import install_log_redaction
from dispatcher.runtime.startup import refuse_to_start_unless_ready


def served_app() -> ASGIApp:
    """The factory each uvicorn worker process calls: logging as the workers log (redacted),
    then the application with the inbox's Socket.IO endpoint beside it.

    The heap built so far (modules, settings, the application) lives as long as the process:
    frozen (``gc.freeze``, as a worker's pool process does after its fork), a full collection
    no longer walks it. With 2,000 live connections a full collection walked 625,000 objects,
    a third of them this start-up heap, in about 0.5 s of the event loop (README, "Inbox": the
    benchmark)."""
    settings = get_settings()
    configure_logging(json=settings.log_json, level=settings.log_level)
    install_log_redaction()
    app = served(create_app(settings))
    if settings.gc_freeze_after_fork:
        gc.freeze()
    return app


def serve(host: str, port: int, workers: int = 1) -> None:
    """Serve until interrupted; with several workers uvicorn starts them (each stateless).

    Like the worker and beat, the API refuses to start (exit non-zero with the message) when
    its key ring is missing or malformed, or opens none of the stored credentials: it decrypts
    integrations' credentials to verify provider callbacks and the organisations' inbox
    secrets, and would otherwise answer ``/healthz`` while refusing every one of them. The
    check runs once here, before uvicorn forks its processes, so a refusal is one exit rather
    than workers restarted in a loop."""
    refuse_to_start_unless_ready("the API")
    uvicorn.run(
        "dispatcher.api.server:served_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        server_header=False,
        # Requests the HTTP parser refuses are answered in Novu's error shape too.
        http="dispatcher.api.http_protocol:NovuErrorsProtocol",
        log_config=None,
    )
