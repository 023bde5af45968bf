"""Declared provider limits, end to end with a real worker: the send rate holds at the provider
across the worker's processes, and a body an integration cannot take never reaches it."""

from __future__ import annotations

import uuid

import pytest

from dispatcher import trigger
from dispatcher.dev.fakeserver import FakeProviderServer
from dispatcher.sending.rate_limit import BURST
from tests.dispatcher.notify_support import (
    EMAIL_STEP,
    act,
    attempts,
    subscriber,
    wait_until_terminal,
    wire,
    workflow,
)

pytestmark = pytest.mark.usefixtures("worker")

RATE = 4.0
SMS_STEP = {"kind": "sms", "template": {"body": "{{ payload.text }}"}}


def most_in_one_second(times: list[float]) -> int:
    """The most requests in any window of one second (each window starting at a request)."""
    times = sorted(times)
    return max(sum(1 for t in times[i:] if t < start + 1.0) for i, start in enumerate(times))


def test_a_rate_limited_integration_never_exceeds_its_rate_and_sends_everything(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wiring = wire(
        fake_provider,
        organisation_id,
        names=("paced",),
        settings={"paced": {"rate_limit_per_second": RATE}},
    )
    names = [f"s{n}" for n in range(12)]
    for name in names:
        subscriber(organisation_id, name)
    workflow(organisation_id, "code", [EMAIL_STEP])
    receipt = trigger(organisation_id, "code", names, {"code": "1"})
    views = wait_until_terminal(organisation_id, receipt.transaction_id, timeout=60)
    assert [view.status for view in views] == ["sent"] * len(names)
    for view in views:
        assert attempts(view.delivery_id) == [("paced", "sent", 200)]
    requests = [r for r in fake_provider.state.requests if r.path == wiring.paths["paced"]]
    assert len(requests) == len(names)
    assert most_in_one_second([r.at for r in requests]) <= RATE + BURST


def twilio(organisation_id: uuid.UUID, fake: FakeProviderServer, path: str) -> uuid.UUID:
    """A Twilio integration whose API is the fake server: Twilio takes 1600 characters."""
    return act(organisation_id, "create_integration", {
        "name": "twilio", "provider": "twilio", "channel_type": "sms", "is_primary": True,
        "credentials": {"account_sid": "AC" + "0" * 32, "auth_token": "SECRET-twilio-token"},
        "settings": {"from_number": "+15005550006", "base_url": f"{fake.url}/{path}"}})  # fmt: skip


def test_a_body_over_every_integrations_limit_fails_with_the_reason_and_no_request(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    path = f"{organisation_id.hex[:12]}-twilio"
    twilio(organisation_id, fake_provider, path)
    [view] = wait_until_terminal(
        organisation_id,
        trigger_long(organisation_id, "x" * 1601),
    )
    assert view.status == "failed"
    assert view.last_error == "twilio: body of 1601 characters exceeds 1600"
    assert attempts(view.delivery_id) == []
    assert not [r for r in fake_provider.state.requests if r.path.startswith(path)]


def test_a_body_over_one_integrations_limit_goes_through_the_next_that_fits(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    path = f"{organisation_id.hex[:12]}-twilio"
    twilio(organisation_id, fake_provider, path)
    act(organisation_id, "create_integration", {
        "name": "roomy", "provider": "fake_http", "channel_type": "sms", "priority": 1,
        "credentials": {"api_key": "SECRET-roomy-key"},
        "settings": {"url": f"{fake_provider.url}/{path}-roomy"}})  # fmt: skip
    [view] = wait_until_terminal(
        organisation_id,
        trigger_long(organisation_id, "x" * 1601),
    )
    assert (view.status, view.integration) == ("sent", "roomy")
    assert attempts(view.delivery_id) == [("roomy", "sent", 200)]
    assert [r.path for r in fake_provider.state.requests if r.path.startswith(path)] == [
        f"{path}-roomy"
    ]


def trigger_long(organisation_id: uuid.UUID, text: str) -> str:
    subscriber(organisation_id, "ada", phone="+447700900001")
    workflow(organisation_id, "long", [SMS_STEP])
    return trigger(organisation_id, "long", "ada", {"text": text}).transaction_id
