"""The ASGI application: middleware, error handlers and the resource routers."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from starlette.types import ASGIApp

from dispatcher.api import errors
from dispatcher.api.body_limits import BodyLimits
from dispatcher.api.callback_path import ProviderCallbacks
from dispatcher.api.idempotency import Idempotency, IdempotencyStore, build_store
from dispatcher.api.inbox import example as inbox_example
from dispatcher.api.inbox.cors import InboxCors
from dispatcher.api.inbox.live import LiveHub
from dispatcher.api.nul_characters import NulCharacters
from dispatcher.api.routers import ROUTERS
from dispatcher.api.single_trigger import SingleTriggers
from dispatcher.config import Settings, get_settings

TITLE = "one-dispatcher"
VERSION = "1.0.0"
DESCRIPTION = (
    "Wire-compatible with Novu's REST API for the routes it shares (Novu's SDKs work with only "
    "the server URL and the key changed). Authenticate with `Authorization: ApiKey <key>` "
    "(`dispatcher api-keys create`)."
)

#: FastAPI's own OpenTelemetry instrumentation is off: it asked the global providers on every
#: request (a twentieth of a trigger's CPU), and its log records carry exception messages, which
#: may quote a secret; the project's metrics and logs are its own (:mod:`dispatcher.observability`).
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def create_app(
    settings: Settings | None = None,
    *,
    idempotency_store: IdempotencyStore | None = None,
    fast_paths: bool = True,
) -> FastAPI:
    """A new application; it keeps no state of its own between requests but the idempotency
    store's in-process fallback (embedded default, without Redis). ``fast_paths=False`` leaves
    the single trigger and provider callbacks to their FastAPI routes (the tests compare)."""
    settings = settings or get_settings()
    app = FastAPI(title=TITLE, version=VERSION, description=DESCRIPTION, telemetry=NO_TELEMETRY)
    errors.install(app)
    #: The browser inbox's live connections of this process (served beside by :func:`served`).
    app.state.live_hub = LiveHub()
    for router in ROUTERS:
        app.include_router(router)
    if settings.inbox_example:
        app.include_router(inbox_example.router)
    store = idempotency_store or build_store(settings.resolved_redis_url)
    # Added first, so innermost: every check of the middlewares below applies to it.
    if fast_paths:
        app.add_middleware(ProviderCallbacks)
        app.add_middleware(SingleTriggers)
    # Added last, so outermost: the body limit is applied before idempotency reads the body.
    app.add_middleware(Idempotency, store=store, ttl=settings.api_idempotency_ttl)
    app.add_middleware(BodyLimits, max_bytes=settings.api_max_body_bytes)
    app.add_middleware(NulCharacters)
    # Outermost: a preflight is answered before anything reads a body it does not have.
    app.add_middleware(InboxCors)
    return app


def served(app: FastAPI) -> ASGIApp:
    """The application with the browser inbox's Socket.IO endpoint (``/socket.io/``) beside it."""
    hub: LiveHub = app.state.live_hub
    return hub.asgi(app)
