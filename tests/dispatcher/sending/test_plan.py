"""Planning on its own: from loaded rows to jobs, without a database or HTTP.

Each case is one way a delivery ends before any request (deleted rows, conditions, preferences,
templates, addresses, integrations), or the shape of the job that goes on to be sent.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from dispatcher.sending.integrations import Candidate
from dispatcher.sending.plan import FetchState, Loaded, build_jobs, opted_out, recipient
from dispatcher.sending.rendering import TemplateRenderer
from models import (
    ChannelType,
    DeliveryStatus,
    IntegrationStatus,
    Preference,
    StepKind,
    Workflow,
    WorkflowStep,
)
from models.types import utcnow
from providers.fake import FakeCredentials

ORG = uuid.uuid4()
RENDERER = TemplateRenderer(timeout=2.0, max_length=100_000)


@dataclass(frozen=True)
class DeliveryRow:
    id: uuid.UUID
    organisation_id: uuid.UUID
    notification_id: uuid.UUID
    step_id: uuid.UUID | None
    channel_type: ChannelType | None
    attempts: int = 0
    critical: bool = False
    meta: dict[str, Any] = field(default_factory=dict)
    step_kind: StepKind = StepKind.EMAIL
    step_position: int = 0


@dataclass(frozen=True)
class NotificationRow:
    id: uuid.UUID
    subscriber_id: uuid.UUID
    workflow_id: uuid.UUID
    payload: dict[str, Any] = field(default_factory=dict)
    actor: dict[str, Any] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    digest_until: None = None
    digest_key: str | None = None


@dataclass(frozen=True)
class SubscriberRow:
    id: uuid.UUID
    external_id: str = "user-1"
    first_name: str | None = "Ada"
    last_name: str | None = "Lovelace"
    email: str | None = "ada@example.com"
    phone: str | None = "+4915112345678"
    locale: str | None = None
    timezone: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    channels: dict[str, Any] = field(default_factory=dict)


def candidate(name: str = "primary") -> Candidate:
    return Candidate(
        integration_id=uuid.uuid5(uuid.NAMESPACE_DNS, name),
        provider="fake",
        credentials=FakeCredentials(api_key=SecretStr("k")),
        settings={},
        status=IntegrationStatus.ACTIVE,
    )


def loaded(
    channel: ChannelType = ChannelType.EMAIL,
    template: dict[str, str] | None = None,
    *,
    conditions: list[dict[str, Any]] | None = None,
    payload: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
    subscriber: SubscriberRow | None = None,
    preferences: list[Preference] | None = None,
    critical: bool = False,
    candidates: list[Candidate] | None = None,
    delete: str | None = None,
) -> Loaded:
    workflow = Workflow(id=uuid.uuid4(), organisation_id=ORG, key="w", name="w", critical=critical)
    step = WorkflowStep(
        id=uuid.uuid4(),
        workflow_id=workflow.id,
        position=0,
        kind=StepKind(channel.value),
        template=template
        or {"subject": "Hi {{ subscriber.first_name }}", "body": "Code {{ payload.code }}"},
        conditions=conditions or [],
        config={},
    )
    person = subscriber or SubscriberRow(id=uuid.uuid4())
    notification = NotificationRow(
        id=uuid.uuid4(),
        subscriber_id=person.id,
        workflow_id=workflow.id,
        payload={"code": "123"} if payload is None else payload,
        meta=meta or {},
    )
    delivery = DeliveryRow(uuid.uuid4(), ORG, notification.id, step.id, channel)
    return Loaded(
        deliveries=[delivery],
        notifications={notification.id: notification},
        subscribers={} if delete == "subscriber" else {person.id: person},
        steps={} if delete == "step" else {step.id: step},
        workflows={} if delete == "workflow" else {workflow.id: workflow},
        preferences={person.id: preferences or []},
        integrations={(ORG, channel): [candidate()] if candidates is None else candidates},
        attempts={},
        digests={},
    )


def preference(
    enabled: bool, *, channel: ChannelType | None = None, workflow: bool = False
) -> Preference:
    return Preference(
        enabled=enabled, channel_type=channel, workflow_id=WORKFLOW if workflow else None
    )


WORKFLOW = uuid.uuid4()


def decided(data: Loaded) -> tuple[DeliveryStatus, str] | None:
    [job] = build_jobs(data, RENDERER)
    return job.decided


@pytest.mark.parametrize("gone", ["subscriber", "step", "workflow"])
def test_a_deleted_row_fails_the_delivery(gone: str) -> None:
    assert decided(loaded(delete=gone)) == (
        DeliveryStatus.FAILED,
        "the subscriber or workflow step was deleted",
    )


@pytest.mark.parametrize(
    ("plan", "expected"),
    [
        ("pro", None),
        ("free", (DeliveryStatus.SKIPPED, "step conditions not met")),
    ],
)
def test_conditions(plan: str, expected: tuple[DeliveryStatus, str] | None) -> None:
    data = loaded(
        conditions=[{"field": "payload.plan", "op": "eq", "value": "pro"}],
        payload={"plan": plan, "code": "1"},
    )
    assert decided(data) == expected


@pytest.mark.parametrize(
    ("critical", "expected"),
    [(False, (DeliveryStatus.SKIPPED, "subscriber opted out")), (True, None)],
)
def test_an_opt_out_skips_unless_the_workflow_is_critical(
    critical: bool, expected: tuple[DeliveryStatus, str] | None
) -> None:
    data = loaded(preferences=[Preference(enabled=False)], critical=critical)
    assert decided(data) == expected


@pytest.mark.parametrize(
    ("preferences", "channel", "out"),
    [
        ([], ChannelType.EMAIL, False),
        ([preference(False)], ChannelType.EMAIL, True),
        (
            [preference(False), preference(True, channel=ChannelType.EMAIL)],
            ChannelType.EMAIL,
            False,
        ),
        ([preference(False), preference(True, channel=ChannelType.EMAIL)], ChannelType.SMS, True),
        (
            [preference(True, channel=ChannelType.EMAIL), preference(False, workflow=True)],
            ChannelType.EMAIL,
            True,
        ),
        (
            [
                preference(False, workflow=True),
                preference(True, workflow=True, channel=ChannelType.SMS),
            ],
            ChannelType.SMS,
            False,
        ),
    ],
)
def test_the_most_specific_preference_wins(
    preferences: list[Preference], channel: ChannelType, out: bool
) -> None:
    assert opted_out(preferences, WORKFLOW, channel) is out


def test_a_template_error_fails_the_delivery_with_the_reason() -> None:
    status, reason = decided(
        loaded(template={"subject": "x", "body": "{{ payload.code | nosuchfilter }}"})
    ) or (None, "")
    assert status is DeliveryStatus.FAILED
    assert reason.startswith("template: ")


@pytest.mark.parametrize(
    ("channel", "missing", "reason"),
    [
        (ChannelType.EMAIL, {"email": None}, "subscriber has no email address"),
        (ChannelType.SMS, {"phone": None}, "subscriber has no phone number"),
        (ChannelType.PUSH, {}, "subscriber has no push device token"),
    ],
)
def test_a_missing_address_fails_the_delivery(
    channel: ChannelType, missing: dict[str, Any], reason: str
) -> None:
    person = replace(SubscriberRow(id=uuid.uuid4()), **missing)
    template = {"title": "t", "body": "b", "subject": "s"}
    assert decided(loaded(channel, template, subscriber=person)) == (DeliveryStatus.FAILED, reason)


def test_no_integration_fails_the_delivery_naming_the_channel() -> None:
    assert decided(loaded(ChannelType.SMS, candidates=[])) == (
        DeliveryStatus.FAILED,
        "no active sms integration in this organisation",
    )


def test_a_job_to_send_carries_the_rendered_message_and_its_candidates() -> None:
    data = loaded(candidates=[candidate("primary"), candidate("secondary")])
    [job] = build_jobs(data, RENDERER)
    assert job.decided is None
    assert job.message is not None
    assert (job.message.subject, job.message.body) == ("Hi Ada", "Code 123")
    assert job.message.to.email == "ada@example.com"
    assert job.message.to.name == "Ada Lovelace"
    assert job.content == {"subject": "Hi Ada", "body": "Code 123"}
    assert [c.integration_id for c in job.candidates] == [
        candidate("primary").integration_id,
        candidate("secondary").integration_id,
    ]


def test_overrides_replace_fields_and_a_pinned_integration_goes_first() -> None:
    pinned = candidate("secondary").integration_id
    overrides = {
        "email": {
            "subject": "Override",
            "integration_id": str(pinned),
            "to": {"email": "x@example.com"},
        }
    }
    data = loaded(
        meta={"overrides": overrides}, candidates=[candidate("primary"), candidate("secondary")]
    )
    [job] = build_jobs(data, RENDERER)
    assert job.message is not None
    assert job.message.subject == "Override"
    assert job.message.to.email == "x@example.com"
    assert job.candidates[0].integration_id == pinned


def test_an_override_address_of_the_wrong_shape_fails_the_delivery() -> None:
    data = loaded(meta={"overrides": {"email": {"to": {"device_tokens": 5}}}})
    assert decided(data) == (DeliveryStatus.FAILED, "overrides.to: not a valid recipient")


def test_in_app_needs_no_integration() -> None:
    [job] = build_jobs(loaded(ChannelType.IN_APP, {"body": "hello"}, candidates=[]), RENDERER)
    assert job.decided is None
    assert job.message is not None and job.message.body == "hello"
    assert job.candidates == []


def test_recipient_reads_channel_addresses_and_overrides() -> None:
    person = SubscriberRow(
        id=uuid.uuid4(),
        channels={
            "push": {"device_tokens": ["t1", "t2"]},
            "chat": {"webhook_url": "https://chat.example/h"},
        },
    )
    to = recipient(person, {"device_tokens": ["t3"], "unknown": "ignored"})
    assert to.device_tokens == ("t3",)
    assert to.webhook_url == "https://chat.example/h"
    assert to.subscriber_id == "user-1"


def waiting(state: FetchState | None) -> Loaded:
    """A delivery that waits for the fetch step at position 0, the fetch in ``state``."""
    data = loaded()
    [delivery] = data.deliveries
    assert isinstance(delivery, DeliveryRow)
    data.deliveries = [replace(delivery, meta={"after_fetch": {"position": 0, "delay": 0}},
                               step_position=1)]  # fmt: skip
    if state is not None:
        data.fetches = {(delivery.notification_id, 0): state}
    return data


#: Stands for "30 s from when the test runs" (a time taken at collection would be stale by then).
SOON = datetime(2000, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("state", "expected", "delay"),
    [
        (FetchState(DeliveryStatus.SENT, None, None), None, None),
        (FetchState(DeliveryStatus.SKIPPED, "step conditions not met", None), None, None),
        (FetchState(DeliveryStatus.FAILED, "fetch: HTTP 404 from the fetch URL", None),
         (DeliveryStatus.FAILED,
          "the fetch step (step 0) failed: fetch: HTTP 404 from the fetch URL"), None),
        (FetchState(DeliveryStatus.CANCELLED, "cancelled by the producer", None),
         (DeliveryStatus.FAILED, "the fetch step (step 0) failed: cancelled by the producer"),
         None),
        (FetchState(DeliveryStatus.RETRYING, "fetch: HTTP 503", SOON),
         (DeliveryStatus.RETRYING, "waiting for the fetch step (step 0)"), (30.0, 31.0)),
        (FetchState(DeliveryStatus.QUEUED, None, None),
         (DeliveryStatus.RETRYING, "waiting for the fetch step (step 0)"), (1.0, 1.0)),
        (None, (DeliveryStatus.FAILED, "the fetch step (step 0) is missing"), None),
    ],
)  # fmt: skip
def test_a_delivery_after_a_fetch_goes_by_the_fetchs_state(
    state: FetchState | None,
    expected: tuple[DeliveryStatus, str] | None,
    delay: tuple[float, float] | None,
) -> None:
    if state is not None and state.next_attempt_at == SOON:
        state = replace(state, next_attempt_at=utcnow() + timedelta(seconds=30))
    [job] = build_jobs(waiting(state), RENDERER)
    assert job.decided == expected
    if delay is None:
        assert job.decided_delay is None
    else:
        assert job.decided_delay is not None
        assert delay[0] - 1 <= job.decided_delay <= delay[1]
    if expected is None:
        assert job.message is not None and job.message.body == "Code 123"
