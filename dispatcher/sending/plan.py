"""Load what a claimed batch needs in a few queries, and decide each delivery's fate.

For every delivery: are its conditions met, has the subscriber opted out, can its templates be
rendered, has the subscriber an address for the channel, is that address suppressed (a hard
bounce or a complaint: ``skipped``, reason ``suppressed``, before any request, no integration
burned), and which integrations may send it, in order (primary first, then ascending
priority, then oldest), minus those this delivery already burned. The result is a :class:`Job`
to send, or a final outcome reached without sending.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pydantic import SecretStr, ValidationError
from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import Session

from dispatcher.sending.conditions import all_hold
from dispatcher.sending.digests import close_open_digests
from dispatcher.sending.fetch import (
    AFTER_FETCH,
    SIGNING_PROVIDER,
    FetchConfig,
    FetchRequest,
    described_url,
    render_request,
)
from dispatcher.sending.integrations import Candidate, candidate_from_row, sealed_column
from dispatcher.sending.layouts import LayoutRow, choose_layout, finish_email, load_layouts
from dispatcher.sending.rendering import RenderError, TemplateRenderer
from dispatcher.sending.routing import Earlier, confirm_within, decide_wait, load_earlier, wait_for
from dispatcher.sending.translations import render_localized
from models import (
    TERMINAL_DELIVERY_STATUSES,
    AttemptOutcome,
    ChannelType,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Integration,
    IntegrationStatus,
    Notification,
    Preference,
    StepKind,
    Subscriber,
    Suppression,
    Workflow,
    WorkflowStep,
    normalize_address,
)
from models.bulk import among
from models.types import utcnow
from providers.base import Message, Recipient
from providers.webhook import WebhookCredentials

logger = logging.getLogger(__name__)

TEMPLATE_FIELDS = ("subject", "body", "html", "title")


@dataclass
class Job:
    delivery_id: uuid.UUID
    organisation_id: uuid.UUID
    notification_id: uuid.UUID
    channel: ChannelType
    attempts: int
    critical: bool = False
    message: Message | None = None
    content: dict[str, Any] = field(default_factory=dict)
    candidates: list[Candidate] = field(default_factory=list)
    #: Attempts this delivery already made per integration, and integrations it burned.
    attempts_by_integration: dict[uuid.UUID, int] = field(default_factory=dict)
    burned: set[uuid.UUID] = field(default_factory=set)
    #: Set when the outcome is known without sending: ("skipped" | "failed", reason).
    decided: tuple[DeliveryStatus, str] | None = None
    #: Seconds before a delivery ``decided`` retrying is tried again (None: at once).
    decided_delay: float | None = None
    subscriber_id: uuid.UUID | None = None
    #: A fetch step's request, rendered: made instead of a send (no integration).
    fetch: FetchRequest | None = None
    #: A fetch step's position, whatever its outcome: the deliveries after it wait for it.
    fetch_position: int | None = None
    #: Seconds its send waits for a ``delivered`` report (``config.success``), or ``None``.
    confirm_within: float | None = None


class DeliveryRow(Protocol):
    """The columns of a delivery that planning reads (a plain row, not an ORM object: loading
    500 ORM objects of each kind took about a sixth of a sending worker's time)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def organisation_id(self) -> uuid.UUID: ...
    @property
    def notification_id(self) -> uuid.UUID: ...
    @property
    def step_id(self) -> uuid.UUID | None: ...
    @property
    def channel_type(self) -> ChannelType | None: ...
    @property
    def attempts(self) -> int: ...
    @property
    def meta(self) -> dict[str, Any]: ...
    @property
    def critical(self) -> bool: ...
    @property
    def step_kind(self) -> StepKind: ...
    @property
    def step_position(self) -> int: ...


class NotificationRow(Protocol):
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def subscriber_id(self) -> uuid.UUID: ...
    @property
    def workflow_id(self) -> uuid.UUID: ...
    @property
    def payload(self) -> dict[str, Any]: ...
    @property
    def actor(self) -> dict[str, Any] | None: ...
    @property
    def meta(self) -> dict[str, Any]: ...
    @property
    def digest_until(self) -> datetime | None: ...
    @property
    def digest_key(self) -> str | None: ...


class SubscriberRow(Protocol):
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def external_id(self) -> str: ...
    @property
    def first_name(self) -> str | None: ...
    @property
    def last_name(self) -> str | None: ...
    @property
    def email(self) -> str | None: ...
    @property
    def phone(self) -> str | None: ...
    @property
    def locale(self) -> str | None: ...
    @property
    def timezone(self) -> str | None: ...
    @property
    def data(self) -> dict[str, Any]: ...
    @property
    def channels(self) -> dict[str, Any]: ...


DELIVERY_COLUMNS = tuple(
    getattr(Delivery, name)
    for name in ("id", "organisation_id", "notification_id", "step_id", "channel_type",
                 "attempts", "critical", "meta", "step_kind", "step_position")
)  # fmt: skip
NOTIFICATION_COLUMNS = tuple(
    getattr(Notification, name)
    for name in ("id", "subscriber_id", "workflow_id", "payload", "actor", "meta", "digest_until",
                 "digest_key")
)  # fmt: skip
SUBSCRIBER_COLUMNS = tuple(
    getattr(Subscriber, name)
    for name in ("id", "external_id", "first_name", "last_name", "email", "phone", "locale",
                 "timezone", "data", "channels")
)  # fmt: skip


@dataclass
class Loaded:
    deliveries: list[DeliveryRow]
    notifications: dict[uuid.UUID, NotificationRow]
    subscribers: dict[uuid.UUID, SubscriberRow]
    steps: dict[uuid.UUID, WorkflowStep]
    workflows: dict[uuid.UUID, Workflow]
    preferences: dict[uuid.UUID, list[Preference]]
    integrations: dict[tuple[uuid.UUID, ChannelType], list[Candidate]]
    attempts: dict[uuid.UUID, dict[uuid.UUID, tuple[int, bool]]]
    digests: dict[uuid.UUID, list[dict[str, Any]]]
    #: (organisation, channel, normalized address) of the batch's addresses that are suppressed.
    suppressed: frozenset[tuple[uuid.UUID, ChannelType, str]] = frozenset()
    #: Email layouts per organisation (only of organisations with email deliveries).
    layouts: dict[uuid.UUID, list[LayoutRow]] = field(default_factory=dict)
    #: (notification, step position) -> the fetch delivery a delivery of the batch waits for.
    fetches: dict[tuple[uuid.UUID, int], FetchState] = field(default_factory=dict)
    #: The earlier step's delivery of each delivery of a ``wait_for`` step.
    earlier: dict[uuid.UUID, Earlier | None] = field(default_factory=dict)


@dataclass(frozen=True)
class FetchState:
    """A fetch step's delivery as a delivery waiting for it sees it."""

    status: DeliveryStatus
    last_error: str | None
    next_attempt_at: datetime | None


#: The channels whose addresses can be suppressed, and the recipient field of each.
SUPPRESSIBLE = {ChannelType.EMAIL: "email", ChannelType.SMS: "phone"}

#: A delivery's reason when its address is suppressed.
SUPPRESSED = "suppressed"


def _by_id(rows: Iterable[Any]) -> dict[uuid.UUID, Any]:
    return {row.id: row for row in rows}


#: ``Delivery.meta`` key: when a failed delivery was made due again by hand (ISO 8601); the
#: attempts before it no longer count against the integrations' budgets.
RETRIED_AT = "retried_at"


def _attempts_counted(session: Session, deliveries: list[DeliveryRow]) -> ColumnElement[bool]:
    """The attempt rows that count: all of a delivery's, or those since it was retried by hand
    (rare, so the few such deliveries are named one by one)."""
    retried = {d.id: datetime.fromisoformat(d.meta[RETRIED_AT]) for d in deliveries
               if RETRIED_AT in (d.meta or {})}  # fmt: skip
    whole = among(
        session, DeliveryAttempt.delivery_id, [d.id for d in deliveries if d.id not in retried]
    )
    since = [
        and_(DeliveryAttempt.delivery_id == key, DeliveryAttempt.created_at >= cutoff)
        for key, cutoff in retried.items()
    ]
    return or_(whole, *since) if since else whole


def load(session: Session, ids: list[uuid.UUID], environment: str) -> Loaded:
    deliveries: list[DeliveryRow] = list(
        session.execute(select(*DELIVERY_COLUMNS).where(among(session, Delivery.id, ids)))
    )
    # Before the payloads: a fetch found finished has merged its answer into the payload
    # read next (its outcome and the merge are one commit).
    fetches = _fetches(session, deliveries)
    notifications: dict[uuid.UUID, NotificationRow] = _by_id(
        session.execute(
            select(*NOTIFICATION_COLUMNS).where(
                among(session, Notification.id, {d.notification_id for d in deliveries})
            )
        )
    )
    subscribers: dict[uuid.UUID, SubscriberRow] = _by_id(
        session.execute(
            select(*SUBSCRIBER_COLUMNS).where(
                among(session, Subscriber.id, {n.subscriber_id for n in notifications.values()})
            )
        )
    )
    steps = _by_id(
        session.scalars(
            select(WorkflowStep).where(
                among(
                    session,
                    WorkflowStep.id,
                    {d.step_id for d in deliveries if d.step_id is not None},
                )
            )
        )
    )
    workflows = _by_id(
        session.scalars(
            select(Workflow).where(
                among(session, Workflow.id, {n.workflow_id for n in notifications.values()})
            )
        )
    )
    preferences: dict[uuid.UUID, list[Preference]] = defaultdict(list)
    for preference in session.scalars(
        select(Preference).where(among(session, Preference.subscriber_id, subscribers))
    ):
        preferences[preference.subscriber_id].append(preference)
    wanted = {(d.organisation_id, d.channel_type) for d in deliveries if d.channel_type}
    # A fetch step that signs its requests uses the webhook integration's signing secret.
    wanted |= {
        (d.organisation_id, ChannelType.WEBHOOK)
        for d in deliveries
        if d.step_kind is StepKind.FETCH
        and d.step_id in steps
        and steps[d.step_id].config.get("sign") is True
    }
    integrations = _integrations(session, wanted, environment)
    attempts: dict[uuid.UUID, dict[uuid.UUID, tuple[int, bool]]] = defaultdict(dict)
    # An integration whose send was reported undelivered is burned for the delivery too.
    burned_outcome = func.max(
        case(
            (
                DeliveryAttempt.outcome.in_(
                    [AttemptOutcome.INTEGRATION_ERROR, AttemptOutcome.UNCONFIRMED]
                ),
                1,
            ),
            else_=0,
        )
    )
    for delivery_id, integration_id, count, burned in session.execute(
        select(
            DeliveryAttempt.delivery_id,
            DeliveryAttempt.integration_id,
            func.count(),
            burned_outcome,
        )
        .where(_attempts_counted(session, deliveries))
        .group_by(DeliveryAttempt.delivery_id, DeliveryAttempt.integration_id)
    ):
        if integration_id is not None:
            attempts[delivery_id][integration_id] = (int(count), bool(burned))
    return Loaded(
        deliveries, notifications, subscribers, steps, workflows, preferences, integrations,
        attempts, _digest_events(session, notifications),
        _suppressed(session, deliveries, notifications, subscribers),
        load_layouts(session, {d.organisation_id for d in deliveries
                               if d.channel_type is ChannelType.EMAIL}),
        fetches,
        load_earlier(session, deliveries, steps),
    )  # fmt: skip


def _fetches(
    session: Session, deliveries: list[DeliveryRow]
) -> dict[tuple[uuid.UUID, int], FetchState]:
    waiting = {d.notification_id for d in deliveries if AFTER_FETCH in (d.meta or {})}
    if not waiting:
        return {}
    rows = session.execute(
        select(
            Delivery.notification_id, Delivery.step_position, Delivery.status,
            Delivery.last_error, Delivery.next_attempt_at,
        ).where(among(session, Delivery.notification_id, waiting),
                Delivery.step_kind == StepKind.FETCH)
    )  # fmt: skip
    return {
        (row.notification_id, row.step_position): FetchState(
            row.status, row.last_error, row.next_attempt_at
        )
        for row in rows
    }


def _suppressed(
    session: Session,
    deliveries: list[DeliveryRow],
    notifications: Mapping[uuid.UUID, NotificationRow],
    subscribers: Mapping[uuid.UUID, SubscriberRow],
) -> frozenset[tuple[uuid.UUID, ChannelType, str]]:
    """Which of the batch's addresses are suppressed, in one query: every address a delivery
    may go to (the subscriber's, and an override's)."""
    addresses: set[str] = set()
    organisations: set[uuid.UUID] = set()
    for delivery in deliveries:
        field_name = SUPPRESSIBLE.get(delivery.channel_type) if delivery.channel_type else None
        notification = notifications.get(delivery.notification_id)
        if field_name is None or notification is None or delivery.channel_type is None:
            continue
        subscriber = subscribers.get(notification.subscriber_id)
        override = ((notification.meta.get("overrides") or {}).get(delivery.channel_type.value)
                    or {}).get("to") or {}  # fmt: skip
        for value in (getattr(subscriber, field_name, None), override.get(field_name)):
            if isinstance(value, str) and value:
                addresses.add(normalize_address(delivery.channel_type, value))
                organisations.add(delivery.organisation_id)
    if not addresses:
        return frozenset()
    return frozenset(
        (row.organisation_id, row.channel_type, row.address)
        for row in session.execute(
            select(
                Suppression.organisation_id, Suppression.channel_type, Suppression.address
            ).where(
                Suppression.organisation_id.in_(organisations),
                Suppression.channel_type.in_(list(SUPPRESSIBLE)),
                among(session, Suppression.address, addresses),
            )
        )
    )


def _integrations(
    session: Session, wanted: set[tuple[uuid.UUID, ChannelType]], environment: str
) -> dict[tuple[uuid.UUID, ChannelType], list[Candidate]]:
    """The integrations per (organisation, channel) as candidates, in the order they are tried,
    their credentials decrypted row by row into the provider's model."""
    sealed, column_type = sealed_column()
    dialect = session.get_bind().dialect
    found: dict[tuple[uuid.UUID, ChannelType], list[Candidate]] = defaultdict(list)
    rows = session.execute(
        select(
            Integration.id, Integration.organisation_id, Integration.channel_type,
            Integration.provider, Integration.settings, Integration.status, sealed,
        )
        .where(
            Integration.organisation_id.in_({organisation for organisation, _ in wanted}),
            Integration.channel_type.in_({channel for _, channel in wanted}),
            Integration.environment == environment,
            Integration.status.in_([IntegrationStatus.ACTIVE, IntegrationStatus.ERROR]),
        )
        .order_by(
            Integration.is_primary.desc(), Integration.priority, Integration.created_at,
            Integration.id,
        )
    )  # fmt: skip
    for row in rows:
        candidate = candidate_from_row(row, column_type, dialect)
        if candidate.unreadable:
            logger.error(
                "integration %s: stored credentials cannot be decrypted with this worker's keys "
                "(DISPATCHER_ENCRYPTION_KEYS); its deliveries wait until they can",
                row.id,
            )
        found[(row.organisation_id, row.channel_type)].append(candidate)
    return found


def _digest_events(
    session: Session, notifications: Mapping[uuid.UUID, NotificationRow]
) -> dict[uuid.UUID, list[dict[str, Any]]]:
    leaders = [n.id for n in notifications.values() if n.digest_until is not None]
    if not leaders:
        return {}
    # Closed first, read after: once closed, the events a digest has are all it will have.
    close_open_digests(session, leaders)
    events: dict[uuid.UUID, list[dict[str, Any]]] = {
        leader: [notifications[leader].payload] for leader in leaders
    }
    for leader_id, payload in session.execute(
        select(Notification.digest_leader_id, Notification.payload)
        .where(Notification.digest_leader_id.in_(leaders))
        .order_by(Notification.created_at)
    ):
        events[leader_id].append(payload)
    return events


def subscriber_context(subscriber: SubscriberRow) -> dict[str, Any]:
    return {
        "id": str(subscriber.id),
        "subscriber_id": subscriber.external_id,
        "first_name": subscriber.first_name,
        "last_name": subscriber.last_name,
        "email": subscriber.email,
        "phone": subscriber.phone,
        "locale": subscriber.locale,
        "timezone": subscriber.timezone,
        "data": subscriber.data,
    }


def opted_out(preferences: list[Preference], workflow_id: uuid.UUID, channel: ChannelType) -> bool:
    """The most specific preference wins: workflow+channel, workflow, channel, everything."""
    ranked: dict[int, bool] = {}
    for preference in preferences:
        if preference.workflow_id not in (None, workflow_id):
            continue
        if preference.channel_type not in (None, channel):
            continue
        rank = (preference.workflow_id is not None) * 2 + (preference.channel_type is not None)
        ranked[rank] = preference.enabled
    return bool(ranked) and not ranked[max(ranked)]


def recipient(subscriber: SubscriberRow, override: Mapping[str, Any]) -> Recipient:
    channels = subscriber.channels or {}
    push = channels.get("push") or {}
    chat = channels.get("chat") or {}
    webhook = channels.get("webhook") or {}
    name = " ".join(part for part in (subscriber.first_name, subscriber.last_name) if part) or None
    fields: dict[str, Any] = {
        "subscriber_id": subscriber.external_id,
        "name": name,
        "email": subscriber.email,
        "phone": subscriber.phone,
        "locale": subscriber.locale,
        "device_tokens": tuple(push.get("device_tokens") or ()),
        "chat_id": chat.get("chat_id"),
        "webhook_url": chat.get("webhook_url") or webhook.get("url"),
    }
    fields.update({key: value for key, value in override.items() if key in fields})
    if isinstance(fields["device_tokens"], list):
        fields["device_tokens"] = tuple(fields["device_tokens"])
    return Recipient.model_validate(fields)


MISSING_ADDRESS = {
    ChannelType.EMAIL: ("email", "subscriber has no email address"),
    ChannelType.SMS: ("phone", "subscriber has no phone number"),
    ChannelType.PUSH: ("device_tokens", "subscriber has no push device token"),
    ChannelType.WEBHOOK: ("webhook_url", None),
}


def build_jobs(
    loaded: Loaded, renderer: TemplateRenderer, deadline: float | None = None
) -> list[Job]:
    """One job per delivery; past ``deadline`` (a ``time.monotonic()``), the rest are not
    rendered but retried, with no attempt counted: slow templates cannot hold the batch."""
    jobs: list[Job] = []
    for delivery in loaded.deliveries:
        notification = loaded.notifications[delivery.notification_id]
        job = Job(
            delivery_id=delivery.id,
            organisation_id=delivery.organisation_id,
            notification_id=notification.id,
            channel=delivery.channel_type or ChannelType.EMAIL,
            attempts=delivery.attempts,
            critical=delivery.critical,
            subscriber_id=notification.subscriber_id,
            fetch_position=(
                delivery.step_position if delivery.step_kind is StepKind.FETCH else None
            ),
        )
        jobs.append(job)
        if deadline is not None and time.monotonic() >= deadline:
            job.decided = (DeliveryStatus.RETRYING, "the batch's render deadline passed first")
            continue
        _decide(job, delivery, notification, loaded, renderer)
    return jobs


def _waits(job: Job, delivery_id: uuid.UUID, step: WorkflowStep, loaded: Loaded) -> bool:
    """Whether a ``wait_for`` step is decided by its wait: skipped, or due again later."""
    wait = wait_for(step.config)
    if wait is None:
        return False
    verdict = decide_wait(wait, loaded.earlier.get(delivery_id), utcnow())
    if verdict.action == "skip":
        job.decided = (DeliveryStatus.SKIPPED, verdict.reason)
    elif verdict.action == "later":
        job.decided = (DeliveryStatus.RETRYING, verdict.reason)
        job.decided_delay = verdict.delay
    return verdict.action != "send"


def _decide(  # noqa: PLR0911, PLR0912 - one early return per way a delivery ends without sending
    job: Job,
    delivery: DeliveryRow,
    notification: NotificationRow,
    loaded: Loaded,
    renderer: TemplateRenderer,
) -> None:
    subscriber = loaded.subscribers.get(notification.subscriber_id)
    step = loaded.steps.get(delivery.step_id) if delivery.step_id else None
    workflow = loaded.workflows.get(notification.workflow_id)
    if subscriber is None or step is None or workflow is None:
        job.decided = (DeliveryStatus.FAILED, "the subscriber or workflow step was deleted")
        return
    context: dict[str, Any] = {
        "payload": notification.payload,
        "subscriber": subscriber_context(subscriber),
        "actor": notification.actor or {},
    }
    if notification.id in loaded.digests:
        events = loaded.digests[notification.id]
        context["digest"] = {
            "events": events,
            "count": len(events),
            "key": notification.digest_key or "",
        }
    if _waits_for_fetch(job, delivery, loaded):
        return
    if not all_hold(step.conditions, context):
        job.decided = (DeliveryStatus.SKIPPED, "step conditions not met")
        return
    if step.kind is StepKind.FETCH:
        _decide_fetch(job, step, context, renderer, loaded)
        return
    if _waits(job, delivery.id, step, loaded):
        return
    if not workflow.critical and opted_out(
        loaded.preferences.get(subscriber.id, []), workflow.id, job.channel
    ):
        job.decided = (DeliveryStatus.SKIPPED, "subscriber opted out")
        return
    overrides: dict[str, Any] = (notification.meta.get("overrides") or {}).get(
        job.channel.value
    ) or {}
    try:
        rendered = render_localized(
            renderer, step.template, step.config, subscriber.locale, context, TEMPLATE_FIELDS
        )
    except RenderError as exc:
        job.decided = (DeliveryStatus.FAILED, f"template: {exc}")
        return
    rendered.update({key: str(overrides[key]) for key in TEMPLATE_FIELDS if key in overrides})
    if job.channel is ChannelType.EMAIL:
        layout = choose_layout(loaded.layouts.get(delivery.organisation_id, ()), step.config)
        rendered = finish_email(renderer, layout, rendered, context)
    try:
        to = recipient(subscriber, overrides.get("to") or {})
    except ValueError:
        job.decided = (DeliveryStatus.FAILED, "overrides.to: not a valid recipient")
        return
    required = MISSING_ADDRESS.get(job.channel)
    if required and required[1] and not getattr(to, required[0]):
        job.decided = (DeliveryStatus.FAILED, required[1])
        return
    suppressible = SUPPRESSIBLE.get(job.channel)
    if (
        suppressible
        and (
            delivery.organisation_id,
            job.channel,
            normalize_address(job.channel, getattr(to, suppressible)),
        )
        in loaded.suppressed
    ):
        job.decided = (DeliveryStatus.SKIPPED, SUPPRESSED)
        return
    job.content = rendered
    job.message = Message(
        delivery_id=str(delivery.id),
        channel=job.channel.value,
        to=to,
        subject=rendered.get("subject"),
        body=rendered.get("body", ""),
        html=rendered.get("html"),
        title=rendered.get("title"),
        data=dict(overrides.get("data") or {}),
        options={**step.config.get("options", {}), **(overrides.get("options") or {})},
    )
    if job.channel is ChannelType.IN_APP:
        return
    job.confirm_within = confirm_within(step.config)
    previous = loaded.attempts.get(delivery.id, {})
    job.attempts_by_integration = {key: count for key, (count, _) in previous.items()}
    job.burned = {key for key, (_, burned) in previous.items() if burned}
    job.candidates = list(loaded.integrations.get((delivery.organisation_id, job.channel), []))
    pinned = overrides.get("integration_id")
    if pinned:
        # A tool invocation names its integration: tried first, the others stay as fallback.
        job.candidates.sort(key=lambda candidate: str(candidate.integration_id) != str(pinned))
    if not job.candidates:
        job.decided = (
            DeliveryStatus.FAILED,
            f"no active {job.channel.value} integration in this organisation",
        )


#: Longest wait before a delivery claimed while its fetch is unfinished looks again.
MAX_FETCH_RECHECK = 300.0


def _waits_for_fetch(job: Job, delivery: DeliveryRow, loaded: Loaded) -> bool:
    """Whether the delivery's outcome is decided by the fetch step it waits for: failed with
    the fetch's reason, or retried once the fetch is due again when it is unfinished (only a
    delivery claimed before its fetch made it due gets here unfinished)."""
    wait = (delivery.meta or {}).get(AFTER_FETCH)
    if not isinstance(wait, dict):
        return False
    position = int(wait.get("position", -1))
    state = loaded.fetches.get((delivery.notification_id, position))
    if state is None:
        job.decided = (DeliveryStatus.FAILED, f"the fetch step (step {position}) is missing")
        return True
    if state.status in {DeliveryStatus.SENT, DeliveryStatus.SKIPPED}:
        return False
    if state.status in TERMINAL_DELIVERY_STATUSES:
        job.decided = (DeliveryStatus.FAILED, fetch_failed(position, state.last_error))
        return True
    job.decided = (DeliveryStatus.RETRYING, f"waiting for the fetch step (step {position})")
    remaining = (state.next_attempt_at - utcnow()).total_seconds() if state.next_attempt_at else 0.0
    job.decided_delay = min(MAX_FETCH_RECHECK, max(1.0, remaining + 1.0))
    return True


def fetch_failed(position: int, reason: str | None) -> str:
    """The reason of a delivery not sent because the fetch step before it failed."""
    return f"the fetch step (step {position}) failed: {reason or 'no reason recorded'}"


def _decide_fetch(
    job: Job,
    step: WorkflowStep,
    context: Mapping[str, Any],
    renderer: TemplateRenderer,
    loaded: Loaded,
) -> None:
    try:
        config = FetchConfig.model_validate(step.config)
    except ValidationError:
        job.decided = (DeliveryStatus.FAILED, "the fetch step's stored config is not valid")
        return
    secret = None
    if config.sign:
        secret = signing_secret(loaded.integrations.get((job.organisation_id, ChannelType.WEBHOOK)))
        if secret is None:
            job.decided = (DeliveryStatus.FAILED, UNSIGNABLE)
            return
    try:
        job.fetch = render_request(
            config, renderer, context, idempotency_key=str(job.delivery_id), signing_secret=secret
        )
    except RenderError as exc:
        job.decided = (DeliveryStatus.FAILED, f"template: {exc}")
        return
    job.content = {"method": job.fetch.method, "url": described_url(job.fetch.url)}


UNSIGNABLE = (
    "config.sign: the organisation has no active webhook integration (provider webhook) with "
    "a readable signing secret to sign the fetch with"
)


def signing_secret(candidates: list[Candidate] | None) -> SecretStr | None:
    """The signing secret of the first usable ``webhook`` integration (primary first)."""
    for candidate in candidates or ():
        credentials = candidate.credentials
        if candidate.provider == SIGNING_PROVIDER and isinstance(credentials, WebhookCredentials):
            return credentials.signing_secret
    return None
