"""Status-driven routing: failover when a provider reports a sent message failed, or stays silent.

A send of a step whose ``config.success`` is ``{"delivered_within": SECONDS}`` waits, as a
:class:`models.DeliveryWatch` row (no worker held), for the provider's ``delivered`` report
(:mod:`dispatcher.sending.routing` writes it with the send's outcome). Then:

* ``delivered`` (or ``opened``, ``clicked``, ``complained``: each proves it) that occurred by
  the watch's ``wait_until``: done, the watch ends ``delivered``;
* ``undelivered``, or a soft bounce: the integration is marked ``unconfirmed`` for the delivery
  in the attempt log, with the reason, and the delivery is queued again: the worker sends it
  through the organisation's next integration for the channel, in the usual fallback order
  (primary, then priority), skipping the integrations the delivery already burned. Its new
  send gets a watch of its own, with a fresh window;
* no ``delivered`` by ``wait_until``: the same, found by :func:`fail_over_timed_out`, which the
  outbox sweep runs (every ``sweep_interval`` seconds: the failover comes up to that late);
* with no other integration left the delivery ends ``failed``, its reason naming what the
  provider said and that no integration was left;
* a hard bounce, a complaint or an event the provider marks ``suppress`` (an invalid number)
  never fails over: the address is suppressed (:mod:`~dispatcher.lifecycle.apply`), another
  provider would not reach it either.

Decided once: the watch leaves ``waiting`` by a conditional ``UPDATE ... WHERE state =
'waiting'``, under the delivery's row lock (the callbacks' batch holds it, the sweep takes it
with ``SKIP LOCKED``), so a callback and a sweep, or two replays, cannot both send it again.
A late report for a send that was failed over is still recorded (the watch keeps its message id,
:func:`earlier_sends`), and changes nothing: neither the delivery's reported status, which
describes its current send, nor its routing.

The delivery's status stays the sending status: ``sent`` while the watch waits (the
notification counts as completed), ``queued`` again on failover, ``failed`` when exhausted.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy import event, insert, select, tuple_, update
from sqlalchemy.orm import Session

from dispatcher.config import Settings, get_settings
from dispatcher.notifications.enqueue import publish_after_commit, send_batches
from dispatcher.runtime.resources import database
from dispatcher.sending.store import update_notification_statuses
from dispatcher.sending.webhook_events import Change, emit
from models import (
    AttemptOutcome,
    ChannelType,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    DeliveryWatch,
    Integration,
    IntegrationStatus,
    Notification,
    Subscriber,
    WatchState,
    WebhookEventType,
)
from models.ids import new_row_id
from models.types import utcnow
from providers.callbacks import BounceKind, DeliveryEvent, DeliveryEventKind

logger = logging.getLogger(__name__)

#: Watches failed over per sweep transaction; the next sweep takes the rest.
SWEEP_BATCH = 500
#: ``Session.info`` key of the deliveries to publish after the commit.
_PENDING = "routing_failed_over"
#: Characters of a provider's reason kept in the attempt log and ``last_error``.
MAX_REASON = 300

_CONFIRMING = frozenset({
    DeliveryEventKind.DELIVERED, DeliveryEventKind.OPENED, DeliveryEventKind.CLICKED,
    DeliveryEventKind.COMPLAINED,
})  # fmt: skip


@dataclass(frozen=True)
class Reported:
    """One applied event of a message sent by ``integration_id`` as ``provider_message_id``."""

    integration_id: uuid.UUID
    event: DeliveryEvent


@dataclass(frozen=True)
class Verdict:
    state: WatchState
    reason: str
    error_class: str = ""


def judge(event: DeliveryEvent, wait_until: datetime) -> Verdict | None:
    """What one reported event makes of a waiting send, or ``None`` if it decides nothing."""
    detail = f": {event.reason}" if event.reason else ""
    if event.kind in _CONFIRMING:
        if event.occurred_at <= wait_until:
            return Verdict(WatchState.DELIVERED, f"{event.kind.value} in time")
        return None  # too late to count; the timeout sweep fails it over
    if event.suppress or (
        event.kind is DeliveryEventKind.BOUNCED and event.bounce is not BounceKind.SOFT
    ):
        return Verdict(WatchState.SUPPRESSED, f"{event.kind.value}{detail}: address suppressed")
    if event.kind is DeliveryEventKind.UNDELIVERED:
        return Verdict(WatchState.FAILED_OVER, f"reported undelivered{detail}", "undelivered")
    if event.kind is DeliveryEventKind.BOUNCED:
        return Verdict(WatchState.FAILED_OVER, f"soft bounce{detail}", "soft_bounce")
    return None


def earlier_sends(session: Session, pairs: Sequence[tuple[uuid.UUID, str]]) -> list[Any]:
    """Deliveries found by the message id of an earlier send (one that was failed over), with
    the columns :mod:`~dispatcher.lifecycle.apply` reads of a delivery it applies events to."""
    if not pairs:
        return []
    return list(
        session.execute(
            select(
                Delivery.id, Delivery.organisation_id, DeliveryWatch.integration_id,
                DeliveryWatch.provider_message_id, Delivery.channel_type,
                Delivery.reported_status, Delivery.reported_at, Subscriber.email,
                Subscriber.phone, Delivery.notification_id,
            )
            .join(Delivery, Delivery.id == DeliveryWatch.delivery_id)
            .join(Notification, Notification.id == Delivery.notification_id)
            .join(Subscriber, Subscriber.id == Notification.subscriber_id)
            .where(
                tuple_(DeliveryWatch.integration_id, DeliveryWatch.provider_message_id).in_(pairs)
            )
        )
    )  # fmt: skip


def route_reported(session: Session, reported: Iterable[Reported], settings: Settings) -> int:
    """Move the waiting watches these events decide (their deliveries are locked by the
    caller); answers how many deliveries were failed over or ended."""
    by_message: dict[tuple[uuid.UUID, str], list[DeliveryEvent]] = {}
    for item in reported:
        key = (item.integration_id, item.event.provider_message_id)
        by_message.setdefault(key, []).append(item.event)
    if not by_message:
        return 0
    watches = session.scalars(
        select(DeliveryWatch).where(
            tuple_(DeliveryWatch.integration_id, DeliveryWatch.provider_message_id).in_(
                list(by_message)
            ),
            DeliveryWatch.state == WatchState.WAITING,
        )
    ).all()
    now = utcnow()
    rerouted = 0
    for watch in watches:
        sent_as = (watch.integration_id, watch.provider_message_id)
        events = sorted(by_message.get(sent_as, []), key=lambda e: e.occurred_at)  # type: ignore[arg-type]
        verdict = next((v for e in events if (v := judge(e, watch.wait_until)) is not None), None)
        if verdict is not None:
            rerouted += _decide(session, watch, verdict, now, settings)
    return rerouted


def fail_over_timed_out(settings: Settings | None = None, *, now: datetime | None = None) -> int:
    """Fail over the sends whose window passed without a ``delivered`` report; answers how many.
    Run by the outbox sweep; safe to run in several processes at once."""
    settings = settings or get_settings()
    now = now or utcnow()
    with database().transaction() as session:
        due = session.execute(
            select(DeliveryWatch.id, DeliveryWatch.delivery_id)
            .where(DeliveryWatch.state == WatchState.WAITING, DeliveryWatch.wait_until <= now)
            .order_by(DeliveryWatch.wait_until)
            .limit(SWEEP_BATCH)
        ).all()
        if not due:
            return 0
        # The delivery first, as a callbacks' batch takes it: never two locks in both orders.
        locked = set(
            session.scalars(
                select(Delivery.id)
                .where(Delivery.id.in_({row.delivery_id for row in due}))
                .order_by(Delivery.id)
                .with_for_update(skip_locked=True)
            )
        )
        rerouted = 0
        for watch in session.scalars(
            select(DeliveryWatch).where(
                DeliveryWatch.id.in_([row.id for row in due if row.delivery_id in locked])
            )
        ):
            window = (watch.wait_until - watch.sent_at).total_seconds()
            verdict = Verdict(
                WatchState.FAILED_OVER, f"not reported delivered within {window:g} s",
                "delivery_timeout",
            )  # fmt: skip
            rerouted += _decide(session, watch, verdict, now, settings)
        return rerouted


def _decide(
    session: Session, watch: DeliveryWatch, verdict: Verdict, now: datetime, settings: Settings
) -> int:
    """Apply ``verdict`` to a waiting watch, once; 1 if its delivery was sent on or ended."""
    delivery = session.get(Delivery, watch.delivery_id)
    current = (
        delivery is not None
        and delivery.status is DeliveryStatus.SENT
        and delivery.integration_id == watch.integration_id
        and delivery.provider_message_id == watch.provider_message_id
    )
    state = verdict.state
    following: list[uuid.UUID] = []
    if state is WatchState.FAILED_OVER and current:
        assert delivery is not None
        following = _next_integrations(session, delivery, settings)
        if not following:
            state = WatchState.EXHAUSTED
    won = session.execute(
        update(DeliveryWatch)
        .where(DeliveryWatch.id == watch.id, DeliveryWatch.state == WatchState.WAITING)
        .values(state=state, decided_at=now, reason=verdict.reason[:MAX_REASON])
        .returning(DeliveryWatch.id)
        .execution_options(synchronize_session=False)
    ).first()
    if won is None or state not in (WatchState.FAILED_OVER, WatchState.EXHAUSTED) or not current:
        return 0
    assert delivery is not None
    _record_attempt(session, watch, verdict, now)
    channel = delivery.channel_type.value if delivery.channel_type else "channel"
    if state is WatchState.EXHAUSTED:
        delivery.status = DeliveryStatus.FAILED
        delivery.next_attempt_at = None
        delivery.last_error = (
            f"{watch.provider}: {verdict.reason}; no other {channel} integration to send it through"
        )[:1000]
        logger.info("routing: delivery %s failed: %s", delivery.id, verdict.reason)
        failed = Change(
            delivery.organisation_id, WebhookEventType.MESSAGE_FAILED, delivery.notification_id,
            delivery.id, delivery.channel_type, DeliveryStatus.FAILED.value, delivery.last_error,
        )  # fmt: skip
        publish_after_commit(session, emit(session, [failed], now))
    else:
        delivery.status = DeliveryStatus.QUEUED
        # The reported status is of the current send: the next one starts without any.
        delivery.reported_status = delivery.reported_at = None
        # Reserved for the message published after the commit; the sweep takes it otherwise.
        delivery.next_attempt_at = now + timedelta(seconds=settings.enqueue_lease)
        delivery.last_error = (
            f"{watch.provider}: {verdict.reason}; sending it again through the next {channel} "
            "integration"
        )[:1000]
        _publish_after_commit(session, delivery.id, delivery.critical, settings)
        logger.info("routing: delivery %s failed over: %s", delivery.id, verdict.reason)
    delivery.updated_at = now
    session.flush()
    update_notification_statuses(session, {delivery.notification_id}, now)
    return 1


def _next_integrations(session: Session, delivery: Delivery, settings: Settings) -> list[uuid.UUID]:
    """The organisation's integrations for the delivery's channel that it has not burned
    (permanent errors, failed-over sends), besides the current one."""
    if delivery.channel_type is None:
        return []
    burned = set(
        session.scalars(
            select(DeliveryAttempt.integration_id).where(
                DeliveryAttempt.delivery_id == delivery.id,
                DeliveryAttempt.outcome.in_(
                    [AttemptOutcome.INTEGRATION_ERROR, AttemptOutcome.UNCONFIRMED]
                ),
            )
        )
    ) | {delivery.integration_id}
    candidates = session.scalars(
        select(Integration.id).where(
            Integration.organisation_id == delivery.organisation_id,
            Integration.channel_type == ChannelType(delivery.channel_type),
            Integration.environment == settings.environment,
            Integration.status.in_([IntegrationStatus.ACTIVE, IntegrationStatus.ERROR]),
        )
    )
    return [candidate for candidate in candidates if candidate not in burned]


def _record_attempt(
    session: Session, watch: DeliveryWatch, verdict: Verdict, now: datetime
) -> None:
    session.execute(
        insert(DeliveryAttempt).values(
            id=new_row_id(), organisation_id=watch.organisation_id, delivery_id=watch.delivery_id,
            integration_id=watch.integration_id, provider=watch.provider,
            outcome=AttemptOutcome.UNCONFIRMED, http_status=None, latency_ms=None,
            error_class=verdict.error_class or None, error=verdict.reason[:MAX_REASON],
            meta={}, created_at=now,
        )
    )  # fmt: skip


def _publish_after_commit(
    session: Session, delivery_id: uuid.UUID, critical: bool, settings: Settings
) -> None:
    """Publish the deliveries failed over in this transaction once it committed (one message
    per lane, not one per delivery)."""
    pending: list[tuple[bool, uuid.UUID]] | None = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = []

        def publish(_: Session) -> None:
            lanes: dict[bool, list[uuid.UUID]] = {}
            for lane, item in session.info.pop(_PENDING, []):
                lanes.setdefault(lane, []).append(item)
            try:
                send_batches(list(lanes.items()), settings)
            except BrokerError:
                logger.warning("routing: broker unavailable; the outbox sweep sends the "
                               "deliveries failed over")  # fmt: skip

        event.listen(session, "after_commit", publish, once=True)
        event.listen(session, "after_rollback", lambda _: session.info.pop(_PENDING, None),
                     once=True)  # fmt: skip
    pending.append((critical, delivery_id))
