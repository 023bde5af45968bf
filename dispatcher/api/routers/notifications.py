"""``/v1/notifications``: the activity feed, one notification per trigger and subscriber, with
every delivery and (on retrieve) its attempt timeline.

Answers have Novu's required fields (``_id``, ``_environmentId``, ``_organizationId``,
``_subscriberId``, ``transactionId``; a list is ``{data, hasMore, pageSize, page}``) plus ours:
``status`` and ``deliveries``, each with its attempts (integration, provider, outcome, HTTP
status, latency, error class; never an error text, which could hold what a provider echoed),
what the provider reported since (``reportedStatus``, ``reportedAt``) and, on retrieve, the
reported events (``events``: kind, time, reason, followed link).

Novu's ``jobs`` are the deliveries again, one per channel step, in the shape Novu's SDKs parse:
``type`` the channel (a webhook or fetch step is Novu's ``http_request``), ``status`` Novu's job
status (:data:`JOB_STATUS`), ``executionDetails`` one per attempt (on retrieve, as the attempt log),
``providerId`` Novu's id of the provider, or the channel's generic one where Novu has no such
provider (a Google Chat webhook, the fakes) or none was chosen yet: Novu's ids are a closed
enum. Delay and digest steps make no delivery here and so no job.

Filters: ``transactionId``, ``subscriberIds`` (or ``subscriberId``), ``templates`` (or
``workflow``: workflow keys or ids), ``channels`` (or ``channel``), ``status``, and a time range
``after`` / ``before`` (ISO 8601) on the creation time; newest first. Ours:
``POST /v1/notifications/{id}/deliveries/{deliveryId}/retry`` queues a failed delivery again.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import Field
from sqlalchemy import Select, or_, select

from dispatcher.api.errors import NotFoundError, UnprocessableError
from dispatcher.api.novu_providers import job_provider_id, novu_id
from dispatcher.api.rate_limit import CallerDep
from dispatcher.api.routing import NOT_FOUND, resource_router
from dispatcher.api.schemas import MAX_PAGE, Envelope, SubscriberRecordIds, WireModel, envelope
from dispatcher.notifications.redelivery import Retry, retry_delivery
from dispatcher.notifications.status import EventView, delivery_events
from dispatcher.runtime.resources import database
from models import (
    AttemptOutcome,
    ChannelType,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Notification,
    NotificationStatus,
    StepKind,
    Subscriber,
    Workflow,
)

router: APIRouter = resource_router(prefix="/v1/notifications", tag="Notifications")

#: Notifications carry no environment here; Novu requires one.
ENVIRONMENT = "production"
MAX_LIMIT = 100


class AttemptAnswer(WireModel):
    id: str = Field(alias="_id")
    created_at: str
    integration_id: str | None = Field(alias="_integrationId")
    provider_id: str
    outcome: str
    http_status: int | None
    latency_ms: float | None
    error_class: str | None


class EventAnswer(WireModel):
    kind: str
    occurred_at: str
    reason: str | None
    url: str | None


class DeliveryAnswer(WireModel):
    id: str = Field(alias="_id")
    step_position: int
    step_kind: str
    channel: str | None
    status: str
    attempts: int
    integration_id: str | None = Field(alias="_integrationId")
    provider_id: str | None
    provider_message_id: str | None
    last_error: str | None
    sent_at: str | None
    next_attempt_at: str | None
    #: The attempt timeline, oldest first (on retrieve; empty in lists).
    attempt_log: list[AttemptAnswer] = Field(default_factory=list)
    #: What the provider reported after ``sent`` (``delivered``, ``opened``, ...), and when.
    reported_status: str | None = None
    reported_at: str | None = None
    #: The provider's events, oldest first (on retrieve; empty in lists).
    events: list[EventAnswer] = Field(default_factory=list)


class ExecutionDetailAnswer(WireModel):
    """One attempt as Novu's execution detail (no error text: see the module's docstring)."""

    id: str = Field(alias="_id")
    status: Literal["Success", "Warning", "Failed", "Pending", "Queued"]
    detail: str
    is_retry: bool
    is_test: bool = False
    source: Literal["Internal", "Credentials", "Payload", "Webhook"] = "Internal"
    provider_id: str
    created_at: str


class JobStepAnswer(WireModel):
    id: str = Field(alias="_id")
    active: bool = True
    filters: list[dict[str, Any]] = Field(default_factory=list)
    template_id: str = Field(alias="_templateId")
    name: str


class JobAnswer(WireModel):
    id: str = Field(alias="_id")
    type: Literal["in_app", "email", "sms", "chat", "push", "http_request"]
    status: str
    execution_details: list[ExecutionDetailAnswer]
    step: JobStepAnswer
    provider_id: str
    created_at: str
    updated_at: str


class SubscriberAnswer(WireModel):
    id: str = Field(alias="_id")
    subscriber_id: str
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None


class TriggerAnswer(WireModel):
    type: Literal["event"] = "event"
    identifier: str
    variables: list[dict[str, Any]] = Field(default_factory=list)


class TemplateAnswer(WireModel):
    id: str = Field(alias="_id")
    name: str
    triggers: list[TriggerAnswer]


class NotificationAnswer(SubscriberRecordIds):
    template_id: str = Field(alias="_templateId")
    transaction_id: str
    created_at: str
    updated_at: str
    channels: list[Literal["in_app", "email", "sms", "chat", "push"]]
    subscriber: SubscriberAnswer | None
    template: TemplateAnswer | None
    payload: dict[str, Any]
    status: str
    deliveries: list[DeliveryAnswer]
    #: The deliveries as Novu's jobs (see the module's docstring).
    jobs: list[JobAnswer]


class ActivityPage(WireModel):
    data: list[NotificationAnswer]
    has_more: bool
    page_size: int
    page: int


class RetryAnswer(WireModel):
    id: str = Field(alias="_id")
    status: str


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _attempt(row: DeliveryAttempt) -> AttemptAnswer:
    return AttemptAnswer(
        _id=str(row.id),
        created_at=row.created_at.isoformat(),
        _integrationId=str(row.integration_id) if row.integration_id else None,
        provider_id=novu_id(row.provider),
        outcome=row.outcome.value,
        http_status=row.http_status,
        latency_ms=row.latency_ms,
        error_class=row.error_class,
    )


def _delivery(
    row: Delivery, attempts: Sequence[DeliveryAttempt] = (), events: Sequence[EventView] = ()
) -> DeliveryAnswer:
    return DeliveryAnswer(
        _id=str(row.id),
        step_position=row.step_position,
        step_kind=row.step_kind.value,
        channel=row.channel_type.value if row.channel_type else None,
        status=row.status.value,
        attempts=row.attempts,
        _integrationId=str(row.integration_id) if row.integration_id else None,
        provider_id=novu_id(row.provider) if row.provider else None,
        provider_message_id=row.provider_message_id,
        last_error=row.last_error,
        sent_at=_iso(row.sent_at),
        next_attempt_at=_iso(row.next_attempt_at),
        attempt_log=[_attempt(attempt) for attempt in attempts],
        reported_status=row.reported_status.value if row.reported_status else None,
        reported_at=_iso(row.reported_at),
        events=[
            EventAnswer(kind=e.kind, occurred_at=e.occurred_at.isoformat(), reason=e.reason,
                        url=e.url)
            for e in events
        ],
    )  # fmt: skip


#: Novu's job status of each delivery status (Novu has no retrying or unknown: a retry waits in
#: the queue, an outcome not known is not a success).
JOB_STATUS = {
    DeliveryStatus.QUEUED: "queued",
    DeliveryStatus.SENDING: "running",
    DeliveryStatus.RETRYING: "queued",
    DeliveryStatus.SENT: "completed",
    DeliveryStatus.FAILED: "failed",
    DeliveryStatus.UNKNOWN: "failed",
    DeliveryStatus.SKIPPED: "skipped",
    DeliveryStatus.CANCELLED: "canceled",
}
#: Novu's execution detail status and source of each attempt outcome.
DETAIL_STATUS: dict[AttemptOutcome, tuple[Literal["Success", "Warning", "Failed"], str]] = {
    AttemptOutcome.SENT: ("Success", "Internal"),
    AttemptOutcome.RETRYABLE: ("Warning", "Internal"),
    AttemptOutcome.AMBIGUOUS: ("Warning", "Internal"),
    AttemptOutcome.INTEGRATION_ERROR: ("Failed", "Credentials"),
    AttemptOutcome.RECIPIENT_ERROR: ("Failed", "Payload"),
    AttemptOutcome.SKIPPED: ("Warning", "Internal"),
}
DETAIL_TEXT = {
    AttemptOutcome.SENT: "Message sent",
    AttemptOutcome.RETRYABLE: "Provider failed; retried",
    AttemptOutcome.AMBIGUOUS: "No answer from the provider; the message may have been sent",
    AttemptOutcome.INTEGRATION_ERROR: "The integration was refused (credentials or settings)",
    AttemptOutcome.RECIPIENT_ERROR: "The provider refused the recipient or the content",
    AttemptOutcome.SKIPPED: "Skipped",
}


def _detail(row: DeliveryAttempt, position: int, channel: str) -> ExecutionDetailAnswer:
    status, source = DETAIL_STATUS[row.outcome]
    facts = [f"HTTP {row.http_status}" if row.http_status else "", row.error_class or ""]
    detail = DETAIL_TEXT[row.outcome] + "".join(f"; {fact}" for fact in facts if fact)
    return ExecutionDetailAnswer(
        _id=str(row.id), status=status, detail=detail, is_retry=position > 0,
        source=source,
        provider_id=job_provider_id(row.provider, channel), created_at=row.created_at.isoformat(),
    )  # fmt: skip


def _job(row: Delivery, workflow_id: uuid.UUID, attempts: Sequence[DeliveryAttempt]) -> JobAnswer:
    channel = row.channel_type.value if row.channel_type else row.step_kind.value
    if row.step_kind is StepKind.FETCH:
        # An HTTP request in Novu's terms (its http_request step), with none of Novu's providers.
        channel = ChannelType.WEBHOOK.value
    return JobAnswer(
        _id=str(row.id),
        type="http_request" if channel == ChannelType.WEBHOOK.value else channel,
        status=JOB_STATUS[row.status],
        execution_details=[_detail(a, i, channel) for i, a in enumerate(attempts)],
        step=JobStepAnswer(
            _id=str(row.step_id or row.id),
            _templateId=str(workflow_id),
            name=f"{row.step_kind.value} (step {row.step_position})",
        ),
        provider_id=job_provider_id(row.provider, channel),
        created_at=row.created_at.isoformat(),
        updated_at=row.updated_at.isoformat(),
    )


def _answer(
    row: Notification,
    subscriber: Subscriber | None,
    workflow: Workflow | None,
    deliveries: list[DeliveryAnswer],
    jobs: list[JobAnswer],
) -> NotificationAnswer:
    channels = sorted(
        {d.channel for d in deliveries if d.channel and d.channel != ChannelType.WEBHOOK.value}
    )
    return NotificationAnswer(
        _id=str(row.id),
        _environmentId=ENVIRONMENT,
        _organizationId=str(row.organisation_id),
        _subscriberId=subscriber.external_id if subscriber else str(row.subscriber_id),
        _templateId=str(row.workflow_id),
        transaction_id=row.transaction_id,
        created_at=row.created_at.isoformat(),
        updated_at=row.updated_at.isoformat(),
        channels=channels,
        subscriber=None
        if subscriber is None
        else SubscriberAnswer(
            _id=str(subscriber.id),
            subscriber_id=subscriber.external_id,
            first_name=subscriber.first_name,
            last_name=subscriber.last_name,
            email=subscriber.email,
            phone=subscriber.phone,
        ),
        template=None
        if workflow is None
        else TemplateAnswer(
            _id=str(workflow.id),
            name=workflow.name,
            triggers=[TriggerAnswer(identifier=workflow.key)],
        ),
        payload=row.payload,
        status=row.status.value,
        deliveries=deliveries,
        jobs=jobs,
    )


def _uuids(values: Sequence[str]) -> list[uuid.UUID]:
    ids = []
    for value in values:
        try:
            ids.append(uuid.UUID(value))
        except ValueError:
            continue
    return ids


def _filtered(
    organisation_id: uuid.UUID,
    *,
    transaction_id: str | None,
    subscriber_ids: list[str],
    workflows: list[str],
    channels: list[str],
    status: NotificationStatus | None,
    after: datetime | None,
    before: datetime | None,
) -> Select[Notification]:
    query = select(Notification).where(Notification.organisation_id == organisation_id)
    if transaction_id:
        query = query.where(Notification.transaction_id == transaction_id)
    if subscriber_ids:
        query = query.where(
            Notification.subscriber_id.in_(
                select(Subscriber.id).where(
                    Subscriber.organisation_id == organisation_id,
                    Subscriber.external_id.in_(subscriber_ids),
                )
            )
        )
    if workflows:
        query = query.where(
            Notification.workflow_id.in_(
                select(Workflow.id).where(
                    Workflow.organisation_id == organisation_id,
                    or_(Workflow.key.in_(workflows), Workflow.id.in_(_uuids(workflows))),
                )
            )
        )
    if channels:
        known = {channel.value for channel in ChannelType}
        unknown = sorted(set(channels) - known)
        if unknown:
            raise UnprocessableError({"channels": [f"unknown channel {unknown[0]!r}"]})
        query = query.where(
            Notification.id.in_(
                select(Delivery.notification_id).where(
                    Delivery.organisation_id == organisation_id,
                    Delivery.channel_type.in_([ChannelType(c) for c in channels]),
                )
            )
        )
    if status is not None:
        query = query.where(Notification.status == status)
    if after is not None:
        query = query.where(Notification.created_at >= after)
    if before is not None:
        query = query.where(Notification.created_at < before)
    return query


def _render(
    rows: Sequence[Notification], organisation_id: uuid.UUID, *, with_attempts: bool
) -> list[NotificationAnswer]:
    ids = [row.id for row in rows]
    with database().session() as session:
        subscribers = {
            s.id: s
            for s in session.scalars(
                select(Subscriber).where(Subscriber.id.in_({row.subscriber_id for row in rows}))
            )
        }
        workflows = {
            w.id: w
            for w in session.scalars(
                select(Workflow).where(Workflow.id.in_({row.workflow_id for row in rows}))
            )
        }
        deliveries: dict[uuid.UUID, list[Delivery]] = defaultdict(list)
        for delivery in session.scalars(
            select(Delivery)
            .where(Delivery.organisation_id == organisation_id, Delivery.notification_id.in_(ids))
            .order_by(Delivery.step_position)
        ):
            deliveries[delivery.notification_id].append(delivery)
        attempts: dict[uuid.UUID, list[DeliveryAttempt]] = defaultdict(list)
        events: dict[uuid.UUID, list[EventView]] = {}
        if with_attempts:
            delivery_ids = [d.id for ds in deliveries.values() for d in ds]
            events = delivery_events(session, organisation_id, delivery_ids)
            for attempt in session.scalars(
                select(DeliveryAttempt)
                .where(
                    DeliveryAttempt.organisation_id == organisation_id,
                    DeliveryAttempt.delivery_id.in_(delivery_ids),
                )
                .order_by(DeliveryAttempt.created_at, DeliveryAttempt.id)
            ):
                attempts[attempt.delivery_id].append(attempt)
    return [
        _answer(
            row,
            subscribers.get(row.subscriber_id),
            workflows.get(row.workflow_id),
            [
                _delivery(d, attempts.get(d.id, ()), events.get(d.id, ()))
                for d in deliveries.get(row.id, [])
            ],
            [_job(d, row.workflow_id, attempts.get(d.id, ())) for d in deliveries.get(row.id, [])],
        )
        for row in rows
    ]


@router.get("", response_model=ActivityPage)
def list_notifications(
    *,
    caller: CallerDep,
    page: Annotated[int, Query(ge=0, le=MAX_PAGE)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 10,
    transaction_id: Annotated[str | None, Query(alias="transactionId")] = None,
    subscriber_ids: Annotated[list[str] | None, Query(alias="subscriberIds")] = None,
    subscriber_id: Annotated[str | None, Query(alias="subscriberId")] = None,
    templates: Annotated[list[str] | None, Query()] = None,
    workflow: Annotated[str | None, Query()] = None,
    channels: Annotated[list[str] | None, Query()] = None,
    channel: Annotated[str | None, Query()] = None,
    status: Annotated[NotificationStatus | None, Query()] = None,
    after: Annotated[datetime | None, Query()] = None,
    before: Annotated[datetime | None, Query()] = None,
) -> dict[str, Any]:
    """The organisation's notifications, newest first, ``limit`` per ``page`` (from 0)."""
    query = _filtered(
        caller.organisation_id,
        transaction_id=transaction_id,
        subscriber_ids=[*(subscriber_ids or []), *([subscriber_id] if subscriber_id else [])],
        workflows=[*(templates or []), *([workflow] if workflow else [])],
        channels=[*(channels or []), *([channel] if channel else [])],
        status=status,
        after=after,
        before=before,
    )
    query = (
        query.order_by(Notification.created_at.desc(), Notification.id.desc())
        .offset(page * limit)
        .limit(limit + 1)
    )
    with database().session() as session:
        rows = list(session.scalars(query))
        for row in rows:
            session.expunge(row)
    answers = _render(rows[:limit], caller.organisation_id, with_attempts=False)
    return ActivityPage(
        data=answers, has_more=len(rows) > limit, page_size=limit, page=page
    ).model_dump(mode="json", by_alias=True)


def _owned(organisation_id: uuid.UUID, notification_id: str) -> Notification:
    try:
        key = uuid.UUID(notification_id)
    except ValueError:
        raise NotFoundError("notification not found") from None
    with database().session() as session:
        row = session.scalars(
            select(Notification).where(
                Notification.id == key, Notification.organisation_id == organisation_id
            )
        ).one_or_none()
        if row is None:
            raise NotFoundError("notification not found")
        session.expunge(row)
    return row


@router.get("/{notificationId}", response_model=Envelope[NotificationAnswer], responses=NOT_FOUND)
def retrieve_notification(
    notification_id: Annotated[str, Path(alias="notificationId")], caller: CallerDep
) -> dict[str, Any]:
    """One notification with every delivery and its attempt timeline."""
    row = _owned(caller.organisation_id, notification_id)
    [answer] = _render([row], caller.organisation_id, with_attempts=True)
    return envelope(answer)


@router.post(
    "/{notificationId}/deliveries/{deliveryId}/retry",
    response_model=Envelope[RetryAnswer],
    responses=NOT_FOUND,
)
def retry(
    notification_id: Annotated[str, Path(alias="notificationId")],
    delivery_id: Annotated[str, Path(alias="deliveryId")],
    caller: CallerDep,
) -> dict[str, Any]:
    """Ours: queue a failed (or ``unknown``) delivery again, with a fresh attempt budget."""
    notification = _owned(caller.organisation_id, notification_id)
    try:
        key = uuid.UUID(delivery_id)
    except ValueError:
        raise NotFoundError("delivery not found") from None
    outcome = retry_delivery(caller.organisation_id, notification.id, key)
    if outcome is Retry.NOT_FOUND:
        raise NotFoundError("delivery not found")
    if outcome is Retry.NOT_FAILED:
        raise UnprocessableError({"deliveryId": ["only a failed delivery can be retried"]})
    return envelope(RetryAnswer(_id=str(key), status="queued"))
