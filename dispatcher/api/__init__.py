"""The HTTP boundary: a Novu-compatible REST API over the producer, for any language.

Layout (FastAPI's "bigger applications" pattern)::

    app.py          create_app(): middleware, error handlers, the routers of routers/ROUTERS
    server.py       `dispatcher api`: uvicorn with one or more worker processes
    errors.py       ApiError tree and the handlers: every error in Novu's body shape
    schemas.py      WireModel (camelCase aliases), envelope() / Envelope[T], cursor pagination
    keyset.py       keyset_page(): a cursor page of one table (after/before/limit/direction)
    auth.py         API keys in `Authorization: ApiKey <key>` -> Caller (organisation id)
    keys.py         issuing, listing and revoking keys (the CLI's `dispatcher api-keys`)
    rate_limit.py   per-key GCRA rate limit (Redis) -> CallerDep, what handlers depend on
    body_limits.py  413 over the size limit, 415 for bodies that are not JSON (ASGI middleware)
    nul_characters.py  422 for a NUL character in the path or the query (ASGI middleware)
    idempotency.py  Idempotency-Key on POST: the first 2xx answer replayed for 24 h
    routing.py      resource_router(): an APIRouter whose routes all need a key
    keyset.py       cursor (keyset) queries behind the cursor pages
    novu_providers.py  Novu's provider ids and credential names <-> this project's, both ways
    routers/        one module per resource: health (/healthz, /readyz), events (/v1/events),
                    subscribers, preferences, credentials (/v2 and /v1/subscribers), topics,
                    integrations, notifications and messages (the activity feed), actions (ours)

Adding a resource: a module ``routers/<resource>.py`` with
``router = resource_router(prefix="/v2/<resource>", tag="<Resource>")``, request and answer
models on :class:`~dispatcher.api.schemas.WireModel` (Novu's wire names: ``_id`` by an explicit
``Field(alias="_id")``, the rest camelCase by the alias generator), handlers that take
``caller: CallerDep`` and filter every query by ``caller.organisation_id``, answers wrapped with
:func:`~dispatcher.api.schemas.envelope` (or :func:`~dispatcher.api.schemas.cursor_page` for
lists), the exact status code Novu's SDK expects on the decorator (``status_code=201``), and
errors raised as :class:`~dispatcher.api.errors.ApiError` subclasses (``NotFoundError`` ...); then
add the router to ``routers.ROUTERS`` and regenerate ``openapi.json`` (``make openapi``).
Handlers are plain ``def`` (FastAPI runs them in its thread pool) calling the same functions as
the Python producer; an unavailable database becomes 503 with ``Retry-After`` by itself.

The API is stateless: any number of processes behind a load balancer share the rate limits and
idempotency keys through Redis (per process on the embedded default, without Redis).
"""

from dispatcher.api.app import create_app

__all__ = ["create_app"]
