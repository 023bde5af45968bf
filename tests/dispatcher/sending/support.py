"""A batch sender with in-memory providers, for the functional core's direct tests.

The providers below record what they were handed (``FakeProvider``) and differ only in the limits
they declare; a test module registers them (:data:`LIMITED_PROVIDERS`) in this process's registry,
as a third-party provider would be, with the ``register_provider`` fixture, which takes them out
after each test.
"""

from __future__ import annotations

import uuid
from typing import ClassVar

from pydantic import SecretStr

from dispatcher.runtime.http import SendingRuntime
from dispatcher.sending.circuit import CircuitView, MemoryCircuitStore
from dispatcher.sending.execute import BatchSender, Policy
from dispatcher.sending.integrations import Candidate
from dispatcher.sending.plan import Job
from dispatcher.sending.rate_limit import MemoryRateStore, Pacer
from models import ChannelType, IntegrationStatus
from providers.base import Attachment, LongBody, Message, Recipient
from providers.fake import FakeCredentials, FakeProvider


class ShortTextProvider(FakeProvider):
    """An SMS-like API: ten characters, one attachment, no HTML; longer bodies are refused."""

    name: ClassVar[str] = "test_short_text"
    max_body_length: ClassVar[int | None] = 10
    max_attachments: ClassVar[int] = 1
    supports_html: ClassVar[bool] = False


class TruncatingProvider(ShortTextProvider):
    name: ClassVar[str] = "test_truncating"
    long_body: ClassVar[LongBody] = LongBody.TRUNCATE


class RoomyProvider(FakeProvider):
    """No body limit, ten attachments."""

    name: ClassVar[str] = "test_roomy"
    max_attachments: ClassVar[int] = 10


class PacedProvider(FakeProvider):
    name: ClassVar[str] = "test_paced"
    rate_limit_per_second: ClassVar[float | None] = 2.0


LIMITED_PROVIDERS = (ShortTextProvider, TruncatingProvider, RoomyProvider, PacedProvider)


def policy(max_rate_wait: float = 0.0) -> Policy:
    return Policy(
        max_attempts_per_integration=3,
        max_attempts_per_delivery=10,
        retry_base_delay=1.0,
        retry_max_delay=60.0,
        circuit_cooldown=30.0,
        concurrency_per_integration=10,
        retry_after_cap=300.0,
        max_rate_wait=max_rate_wait,
    )


def candidate(provider: str) -> Candidate:
    return Candidate(
        integration_id=uuid.uuid4(),
        provider=provider,
        credentials=FakeCredentials(api_key=SecretStr("fake-key-123456")),
        settings={},
        status=IntegrationStatus.ACTIVE,
    )


def job(
    candidates: list[Candidate],
    body: str = "hello",
    html: str | None = None,
    attachments: int = 0,
) -> Job:
    delivery_id = uuid.uuid4()
    files = tuple(Attachment(filename=f"{n}.txt", content=b"x") for n in range(attachments))
    message = Message(
        delivery_id=str(delivery_id),
        channel=ChannelType.SMS.value,
        to=Recipient(phone="+447700900001"),
        body=body,
        html=html,
        attachments=files,
    )
    return Job(
        delivery_id=delivery_id,
        organisation_id=uuid.uuid4(),
        notification_id=uuid.uuid4(),
        channel=ChannelType.SMS,
        attempts=0,
        message=message,
        candidates=candidates,
    )


def closed_circuits() -> CircuitView:
    return CircuitView(MemoryCircuitStore(threshold=1_000_000, cooldown=30.0), [])


def sender(runtime: SendingRuntime, max_rate_wait: float = 0.0) -> BatchSender:
    rules = policy(max_rate_wait)
    pacer = Pacer(MemoryRateStore(), max_wait=rules.max_rate_wait)
    return BatchSender(runtime, rules, closed_circuits(), pacer)


def sent_by(runtime: SendingRuntime, provider: str) -> list[Message]:
    instance = runtime.provider(provider)
    assert isinstance(instance, FakeProvider)
    return instance.sent
