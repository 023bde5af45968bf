"""The runtime's connector checks the address it connects to, whatever the check before said.

Loopback servers listen on 127.0.0.2, outside the suite's allow-list (127.0.0.1). A public
address appears only as a resolver's answer that is checked and never connected to.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from dispatcher.runtime.http import SendingRuntime
from dispatcher.runtime.url_guard import DestinationGuard
from dispatcher.sending.execute import BatchSender, Outcome
from dispatcher.sending.integrations import Candidate
from dispatcher.sending.plan import Job
from models import AttemptOutcome, ChannelType, DeliveryStatus, IntegrationStatus
from providers.base import Message, Recipient
from providers.errors import IntegrationError, RetryableError
from providers.http import DestinationRefusedError, send_request
from providers.webhook import WebhookProvider
from tests.dispatcher.sending.test_execute import POLICY, Circuit
from tests.security.connections import Listener, guarded_runtime, listening

PUBLIC = "93.184.216.34"
REBINDING_HOST = "rebinding.example"


class Rebinding(AbstractResolver):
    """Answers a public address the first time a name is asked, then 127.0.0.2: what a
    tenant's DNS server does to pass a check and connect somewhere else."""

    def __init__(self) -> None:
        self.asked = 0

    def names(self, host: str) -> list[str]:
        """The same answers in :class:`DestinationGuard`'s resolver shape."""
        self.asked += 1
        return [PUBLIC if self.asked == 1 else "127.0.0.2"]

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in self.names(host)
        ]

    async def close(self) -> None:
        pass


@pytest.fixture
def listener() -> Iterator[Listener]:
    with listening("127.0.0.2") as running:
        yield running


def webhook_job(settings_url: str | None, subscriber_url: str | None) -> Job:
    """One webhook delivery through the webhook provider, to either URL."""
    candidate = Candidate(
        integration_id=uuid.uuid4(), provider="webhook",
        credentials=WebhookProvider.parse_credentials({"signing_secret": "s" * 32}),
        settings={"url": settings_url} if settings_url else {}, status=IntegrationStatus.ACTIVE,
    )  # fmt: skip
    delivery_id = uuid.uuid4()
    message = Message(
        delivery_id=str(delivery_id), channel=ChannelType.WEBHOOK,
        to=Recipient(webhook_url=subscriber_url), body="hi",
    )  # fmt: skip
    return Job(
        delivery_id=delivery_id, organisation_id=uuid.uuid4(), notification_id=uuid.uuid4(),
        channel=ChannelType.WEBHOOK, attempts=0, message=message, candidates=[candidate],
    )  # fmt: skip


def send_through(runtime: SendingRuntime, resolver: Rebinding, item: Job) -> Outcome:
    sender = BatchSender(runtime, POLICY, Circuit().view)
    # The check before the send asks the same (lying) DNS as the connection does.
    sender.guard = DestinationGuard(POLICY.url_allowlist, resolver=resolver.names)
    [outcome] = runtime.run(sender.send_all([item])).values()
    return outcome


def test_dns_rebinding_after_the_check_is_refused_at_connect(listener: Listener) -> None:
    resolver = Rebinding()
    runtime = SendingRuntime(timeout=5.0, max_connections=4, url_allowlist=(), resolver=resolver)
    try:
        item = webhook_job(f"http://{REBINDING_HOST}:{listener.port}/hook", None)
        outcome = send_through(runtime, resolver, item)
    finally:
        runtime.close()
    assert resolver.asked == 2  # the check saw the public answer, the connection loopback
    assert listener.connections == 0
    [attempt] = outcome.attempts
    assert attempt.outcome is AttemptOutcome.INTEGRATION_ERROR
    assert attempt.error_class == "DestinationRefusedError"
    assert attempt.error == (
        f"destination refused: host '{REBINDING_HOST}' resolves to 127.0.0.2, which is a "
        "loopback address"
    )


def test_dns_rebinding_of_a_subscribers_own_webhook_url_fails_the_delivery(
    listener: Listener,
) -> None:
    resolver = Rebinding()
    runtime = SendingRuntime(timeout=5.0, max_connections=4, url_allowlist=(), resolver=resolver)
    try:
        item = webhook_job(None, f"http://{REBINDING_HOST}:{listener.port}/mine")
        outcome = send_through(runtime, resolver, item)
    finally:
        runtime.close()
    assert listener.connections == 0
    assert outcome.status is DeliveryStatus.FAILED
    [attempt] = outcome.attempts
    assert attempt.outcome is AttemptOutcome.RECIPIENT_ERROR
    assert attempt.error == (
        f"webhook URL refused: destination refused: host '{REBINDING_HOST}' resolves to "
        "127.0.0.2, which is a loopback address"
    )


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "http2"])
def test_a_literal_private_address_is_refused_at_connect_without_any_check(
    listener: Listener, http2: bool
) -> None:
    with guarded_runtime() as runtime:
        client = runtime.client(http2=http2)
        with pytest.raises(DestinationRefusedError) as refused:
            runtime.run(send_request("probe", client, "GET", f"{listener.url}/x"))
    assert listener.connections == 0
    assert isinstance(refused.value, IntegrationError)
    assert refused.value.reason == "destination refused: 127.0.0.2 is a loopback address"


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "http2"])
def test_an_allow_listed_address_is_connected_to(listener: Listener, http2: bool) -> None:
    with guarded_runtime(allow=("127.0.0.2",)) as runtime:
        client = runtime.client(http2=http2)
        # The listener closes every connection at once: a connection error, not a refusal.
        with pytest.raises(RetryableError):
            runtime.run(send_request("probe", client, "GET", f"{listener.url}/x"))
    assert listener.connections >= 1


def test_an_allow_listed_host_name_may_resolve_to_a_private_address(listener: Listener) -> None:
    with listening("127.0.0.1") as local, guarded_runtime(allow=("localhost",)) as runtime:
        client = runtime.client()
        with pytest.raises(RetryableError):
            runtime.run(send_request("probe", client, "GET", f"http://localhost:{local.port}/"))
        assert local.connections >= 1
        # Allowing a name allows the addresses it resolves to, not every private address.
        with pytest.raises(DestinationRefusedError):
            runtime.run(send_request("probe", client, "GET", f"{listener.url}/x"))
    assert listener.connections == 0
