"""``/v1/events``: trigger, bulk trigger, broadcast and cancel, as Novu's SDKs call them.

Mapped onto the producer (:mod:`dispatcher.notifications.triggers`): the API writes the same
outbox rows and never sends itself, so a trigger is accepted while the broker is down (the
sweeper hands it over later). What Novu sends and this project has no equivalent for is
accepted and ignored: ``overrides`` (Novu's provider and step overrides differ from ours),
``tenant``, ``context``, ``bridgeUrl``, ``agentId``, a topic's ``exclude``, an inline
subscriber's ``avatar`` and ``channels``.

Without a ``transactionId`` a trigger gets one derived from its ``Idempotency-Key`` when it has
one (so a retry the idempotency store did not see is still written once), else a random one.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path
from pydantic import BeforeValidator, Discriminator, Field, Tag

from dispatcher.api.rate_limit import CallerDep
from dispatcher.api.routing import TRIGGER_INVALID, resource_router
from dispatcher.api.schemas import Envelope, SubscriberProfile, WireModel, envelope, wire_tag
from dispatcher.errors import TriggerError
from dispatcher.notifications import triggers
from dispatcher.notifications.broadcast import trigger_broadcast
from dispatcher.notifications.cancellation import cancel_transaction
from dispatcher.notifications.triggers import TriggerReceipt, trigger_bulk

router: APIRouter = resource_router(prefix="/v1/events", tag="Events")

#: Novu's limit on events per bulk request.
MAX_BULK_EVENTS = 100
#: Inline subscriber fields this project stores, by their names here.
SUBSCRIBER_FIELDS = ("email", "phone", "first_name", "last_name", "locale", "timezone", "data")


class SubscriberPayload(SubscriberProfile):
    subscriber_id: str
    channels: list[dict[str, Any]] | None = None


class TopicPayload(WireModel):
    topic_key: str
    type: Literal["Topic"] = "Topic"
    exclude: list[str] | None = None


def _recipient_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return wire_tag("id")
    if isinstance(value, TopicPayload):
        return wire_tag("topic")
    if isinstance(value, SubscriberPayload):
        return wire_tag("subscriber")
    if isinstance(value, dict):
        topic = "topicKey" in value or "topic_key" in value or value.get("type") == "Topic"
        return wire_tag("topic" if topic else "subscriber")
    return None


Recipient = Annotated[
    Annotated[str, Tag(wire_tag("id"))]
    | Annotated[SubscriberPayload, Tag(wire_tag("subscriber"))]
    | Annotated[TopicPayload, Tag(wire_tag("topic"))],
    Discriminator(_recipient_kind),
]
Actor = Annotated[
    Annotated[str, Tag(wire_tag("id"))] | Annotated[SubscriberPayload, Tag(wire_tag("subscriber"))],
    Discriminator(_recipient_kind),
]


def _one_or_many(value: Any) -> Any:
    return value if isinstance(value, list) else [value]


class TriggerRequest(WireModel):
    #: The workflow's key (the SDKs' ``workflowId``).
    name: str = Field(min_length=1)
    #: A subscriber id, a subscriber, a topic ``{"type": "Topic", "topicKey": ...}``, or a list.
    to: Annotated[list[Recipient], BeforeValidator(_one_or_many), Field(min_length=1)]
    payload: dict[str, Any] = Field(default_factory=dict)
    overrides: dict[str, Any] | None = None
    transaction_id: str | None = None
    actor: Actor | None = None
    tenant: str | dict[str, Any] | None = None
    context: dict[str, Any] | None = None


class BulkTriggerRequest(WireModel):
    events: list[TriggerRequest] = Field(min_length=1, max_length=MAX_BULK_EVENTS)


class BroadcastRequest(WireModel):
    name: str = Field(min_length=1)
    payload: dict[str, Any]
    overrides: dict[str, Any] | None = None
    transaction_id: str | None = None
    actor: Actor | None = None
    tenant: str | dict[str, Any] | None = None
    context: dict[str, Any] | None = None


class TriggerResult(WireModel):
    acknowledged: bool
    status: Literal[
        "processed", "error", "trigger_not_active", "no_workflow_active_steps_defined",
        "no_workflow_steps_defined", "no_tenant_found", "invalid_recipients",
    ]  # fmt: skip
    transaction_id: str


IdempotencyKey = Annotated[str | None, Header(alias="idempotency-key")]


@router.post(
    "/trigger", status_code=201, response_model=Envelope[TriggerResult], responses=TRIGGER_INVALID
)
async def trigger_event(
    body: TriggerRequest, caller: CallerDep, idempotency_key: IdempotencyKey = None
) -> dict[str, Any]:
    """Trigger a workflow for its recipients (201 once the rows are written, in a transaction
    shared with the concurrent triggers of this process)."""
    event = to_event(body, idempotency_key, 0)
    receipt = await triggers.trigger_event_async(caller.organisation_id, event)
    return envelope(result(receipt))


@router.post(
    "/trigger/bulk",
    status_code=201,
    response_model=Envelope[list[TriggerResult]],
    responses=TRIGGER_INVALID,
)
def trigger_events(
    body: BulkTriggerRequest, caller: CallerDep, idempotency_key: IdempotencyKey = None
) -> dict[str, Any]:
    """Many triggers in one transaction: all are written, or none (400 naming the event)."""
    events = [to_event(event, idempotency_key, i) for i, event in enumerate(body.events)]
    try:
        receipts = trigger_bulk(caller.organisation_id, events)
    except TriggerError as exc:
        if len(events) > 1:
            raise
        raise TriggerError([{**e, "field": f"events.0.{e['field']}"} for e in exc.errors]) from None
    return envelope([result(receipt) for receipt in receipts])


@router.post(
    "/trigger/broadcast",
    status_code=201,
    response_model=Envelope[TriggerResult],
    responses=TRIGGER_INVALID,
)
def broadcast_event(
    body: BroadcastRequest, caller: CallerDep, idempotency_key: IdempotencyKey = None
) -> dict[str, Any]:
    """Trigger for every subscriber of the organisation, written in chunks (see
    :mod:`dispatcher.notifications.broadcast`); repeating it resumes it."""
    receipt = trigger_broadcast(
        caller.organisation_id, body.name, body.payload,
        transaction_id=body.transaction_id or derived_transaction_id(idempotency_key, 0),
        actor=actor(body.actor),
    )  # fmt: skip
    return envelope(result(receipt))


@router.delete("/trigger/{transactionId}", response_model=bool)
def cancel_event(
    caller: CallerDep, transaction_id: Annotated[str, Path(alias="transactionId")]
) -> bool:
    """Cancel what the transaction has not sent yet; ``true`` when something was cancelled."""
    return cancel_transaction(caller.organisation_id, transaction_id) > 0


def to_event(body: TriggerRequest, idempotency_key: str | None, position: int) -> dict[str, Any]:
    """A Novu trigger as this project's event (validated by the producer)."""
    event: dict[str, Any] = {
        "workflow": body.name,
        "to": [target(item) for item in body.to],
        "payload": body.payload,
    }
    transaction_id = body.transaction_id or derived_transaction_id(idempotency_key, position)
    if transaction_id is not None:
        event["transaction_id"] = transaction_id
    if body.actor is not None:
        event["actor"] = actor(body.actor)
    return event


def target(recipient: str | SubscriberPayload | TopicPayload) -> Any:
    if isinstance(recipient, str):
        return recipient
    if isinstance(recipient, TopicPayload):
        return {"topic": recipient.topic_key}
    return {"subscriber_id": recipient.subscriber_id, **_given(recipient)}


def actor(value: str | SubscriberPayload | None) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return {"subscriber_id": value}
    return {"subscriber_id": value.subscriber_id, **_given(value)}


def _given(subscriber: SubscriberPayload) -> dict[str, Any]:
    """The fields the caller set (a field left out must not clear a stored one)."""
    return {
        name: getattr(subscriber, name)
        for name in SUBSCRIBER_FIELDS
        if name in subscriber.model_fields_set
    }


def derived_transaction_id(idempotency_key: str | None, position: int) -> str | None:
    if not idempotency_key:
        return None
    digest = hashlib.sha256(f"{idempotency_key}\0{position}".encode()).hexdigest()
    return f"idem-{uuid.UUID(digest[:32])}"


def result(receipt: TriggerReceipt) -> TriggerResult:
    return TriggerResult(
        acknowledged=True, status="processed", transaction_id=receipt.transaction_id
    )
