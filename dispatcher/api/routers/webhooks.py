"""``/v1/webhooks/endpoints``: where the organisation's own application receives its events
(ours; Novu has no such resource).

``POST`` creates an endpoint (``url``, ``eventTypes``, optional ``secret``, ``description``,
``enabled``) and answers its ``secret`` once, generated when none was given; no other answer
carries it (write-only, like integration credentials). ``GET`` lists them, ``GET``/``PATCH``/
``DELETE /{endpointId}`` read, change and delete one; ``GET /{endpointId}/deliveries`` lists its
latest events and how their posting went. A URL the guard refuses or an unknown event type is
a 422 naming the field; another organisation's endpoint is 404.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from dispatcher.api.errors import NotFoundError, UnprocessableError
from dispatcher.api.rate_limit import CallerDep
from dispatcher.api.routing import NOT_FOUND, resource_router
from dispatcher.api.schemas import Envelope, Field, WireModel, envelope
from dispatcher.lifecycle.webhooks import (
    MAX_SECRET_LENGTH,
    MAX_URL_LENGTH,
    EndpointError,
    EndpointView,
    EventView,
    change,
    create,
    found,
    listed,
    recent_events,
    remove,
)
from models import WebhookEventStatus

router: APIRouter = resource_router(prefix="/v1/webhooks/endpoints", tag="Webhooks")

EndpointId = Annotated[str, Path(alias="endpointId", max_length=100)]


class EndpointAnswer(WireModel):
    id: str = Field(alias="_id")
    url: str
    event_types: list[str]
    enabled: bool
    description: str | None = None
    created_at: str
    updated_at: str


class CreatedEndpointAnswer(EndpointAnswer):
    #: Shown in this answer only.
    secret: str


class CreateEndpointRequest(WireModel):
    url: str = Field(max_length=MAX_URL_LENGTH)
    event_types: list[str] = Field(max_length=20)
    secret: str | None = Field(default=None, max_length=MAX_SECRET_LENGTH)
    description: str | None = Field(default=None, max_length=500)
    enabled: bool = True

    def __repr__(self) -> str:
        return f"CreateEndpointRequest(event_types={self.event_types!r})"


class UpdateEndpointRequest(WireModel):
    url: str | None = Field(default=None, max_length=MAX_URL_LENGTH)
    event_types: list[str] | None = Field(default=None, max_length=20)
    secret: str | None = Field(default=None, max_length=MAX_SECRET_LENGTH)
    description: str | None = Field(default=None, max_length=500)
    enabled: bool | None = None

    def __repr__(self) -> str:
        return f"UpdateEndpointRequest(event_types={self.event_types!r})"


class EndpointEventAnswer(WireModel):
    id: str = Field(alias="_id")
    event_id: str
    type: str
    status: str
    attempts: int
    http_status: int | None = None
    last_error: str | None = None
    created_at: str
    sent_at: str | None = None


class Deleted(WireModel):
    id: str = Field(alias="_id")
    deleted: bool


def render(view: EndpointView) -> EndpointAnswer:
    return EndpointAnswer(
        _id=str(view.id), url=view.url, event_types=view.event_types, enabled=view.enabled,
        description=view.description, created_at=view.created_at.isoformat(),
        updated_at=view.updated_at.isoformat(),
    )  # fmt: skip


def render_event(view: EventView) -> EndpointEventAnswer:
    return EndpointEventAnswer(
        _id=str(view.id), event_id=str(view.event_id), type=view.type, status=view.status,
        attempts=view.attempts, http_status=view.http_status, last_error=view.last_error,
        created_at=view.created_at.isoformat(),
        sent_at=view.sent_at.isoformat() if view.sent_at else None,
    )  # fmt: skip


def _key(endpoint_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(endpoint_id)
    except ValueError:
        raise NotFoundError("webhook endpoint not found") from None


def _refused(error: EndpointError) -> UnprocessableError:
    return UnprocessableError({error.field: [error.message]})


@router.post("", status_code=201, response_model=Envelope[CreatedEndpointAnswer])
def create_endpoint(body: CreateEndpointRequest, caller: CallerDep) -> dict[str, Any]:
    """Create an endpoint; the answer carries its signing secret, shown this once."""
    try:
        view, secret = create(
            caller.organisation_id, url=body.url, event_types=body.event_types,
            secret=body.secret, description=body.description, enabled=body.enabled,
        )  # fmt: skip
    except EndpointError as exc:
        raise _refused(exc) from None
    answer = render(view)
    return envelope(CreatedEndpointAnswer(**answer.model_dump(), secret=secret))


@router.get("", response_model=Envelope[list[EndpointAnswer]])
def list_endpoints(caller: CallerDep) -> dict[str, Any]:
    """The organisation's endpoints, oldest first (never their secrets)."""
    return envelope([render(view) for view in listed(caller.organisation_id)])


@router.get("/{endpointId}", response_model=Envelope[EndpointAnswer], responses=NOT_FOUND)
def get_endpoint(endpoint_id: EndpointId, caller: CallerDep) -> dict[str, Any]:
    view = found(caller.organisation_id, _key(endpoint_id))
    if view is None:
        raise NotFoundError("webhook endpoint not found")
    return envelope(render(view))


@router.patch("/{endpointId}", response_model=Envelope[EndpointAnswer], responses=NOT_FOUND)
def update_endpoint(
    endpoint_id: EndpointId, body: UpdateEndpointRequest, caller: CallerDep
) -> dict[str, Any]:
    """Change the fields given; a new ``secret`` is accepted and not shown back."""
    key = _key(endpoint_id)
    try:
        view = change(
            caller.organisation_id, key, url=body.url, event_types=body.event_types,
            secret=body.secret, description=body.description, enabled=body.enabled,
        )  # fmt: skip
    except EndpointError as exc:
        raise _refused(exc) from None
    if view is None:
        raise NotFoundError("webhook endpoint not found")
    return envelope(render(view))


@router.delete("/{endpointId}", response_model=Envelope[Deleted], responses=NOT_FOUND)
def delete_endpoint(endpoint_id: EndpointId, caller: CallerDep) -> dict[str, Any]:
    """Delete the endpoint and the events not yet posted to it."""
    key = _key(endpoint_id)
    if not remove(caller.organisation_id, key):
        raise NotFoundError("webhook endpoint not found")
    return envelope(Deleted(_id=str(key), deleted=True))


@router.get(
    "/{endpointId}/deliveries",
    response_model=Envelope[list[EndpointEventAnswer]],
    responses=NOT_FOUND,
)
def list_endpoint_deliveries(
    endpoint_id: EndpointId,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    status: Literal["queued", "sending", "sent", "retrying", "failed"] | None = None,
) -> dict[str, Any]:
    """The endpoint's latest events, newest first, with their posting status."""
    views = recent_events(
        caller.organisation_id, _key(endpoint_id), limit=limit,
        status=WebhookEventStatus(status) if status else None,
    )  # fmt: skip
    if views is None:
        raise NotFoundError("webhook endpoint not found")
    return envelope([render_event(view) for view in views])
