"""Novu's own Python SDK against a real ``dispatcher api`` process: trigger, bulk trigger and
cancel, sent by the session's real worker through the local fake provider."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from novu_py import Novu, models

from dispatcher.api.keys import create_key
from dispatcher.dev.api_process import running_api
from dispatcher.dev.fakeserver import FakeProviderServer
from tests.conftest import REDIS_URL, free_port
from tests.dispatcher.notify_support import (
    EMAIL_STEP,
    subscriber,
    wait_until_terminal,
    wire,
    workflow,
)

pytestmark = pytest.mark.usefixtures("worker")

DELAYED = [{"kind": "delay", "config": {"seconds": 3600}}, EMAIL_STEP]


def test_the_sdk_triggers_and_the_worker_sends(
    novu: Novu, organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wiring = wire(fake_provider, organisation_id)
    subscriber(organisation_id, "ada", first_name="Ada")
    workflow(organisation_id, "code", [EMAIL_STEP])
    answer = novu.trigger(
        trigger_event_request_dto=models.TriggerEventRequestDto(
            workflow_id="code", to="ada", payload={"code": "1234"}
        )
    )
    assert answer.result.acknowledged
    assert answer.result.status == models.TriggerEventResponseDtoStatus.PROCESSED
    assert answer.result.transaction_id
    [view] = wait_until_terminal(organisation_id, answer.result.transaction_id)
    assert (view.subscriber, view.status, view.integration) == ("ada", "sent", "primary")
    assert fake_provider.state.stats()["by_path"][wiring.paths["primary"]] == 1


def test_the_sdk_bulk_triggers_and_cancels(
    novu: Novu, organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wire(fake_provider, organisation_id)
    subscriber(organisation_id, "ada", first_name="Ada")
    workflow(organisation_id, "code", [EMAIL_STEP])
    workflow(organisation_id, "later", DELAYED)
    later = f"later-{uuid.uuid4().hex[:8]}"
    answer = novu.trigger_bulk(
        bulk_trigger_event_dto=models.BulkTriggerEventDto(
            events=[
                models.TriggerEventRequestDto(
                    workflow_id="code",
                    to=[models.SubscriberPayloadDto(
                        subscriber_id="bo", email="bo@example.com", first_name="Bo",
                    )],
                    payload={"code": "1"},
                ),
                models.TriggerEventRequestDto(
                    workflow_id="later", to="ada", payload={"code": "2"}, transaction_id=later,
                ),
            ]
        )
    )  # fmt: skip
    first, second = answer.result
    assert first.acknowledged and second.transaction_id == later
    [bo] = wait_until_terminal(organisation_id, first.transaction_id or "")
    assert (bo.subscriber, bo.status) == ("bo", "sent")
    cancelled = novu.cancel(transaction_id=later)
    assert cancelled.result is True
    [held] = wait_until_terminal(organisation_id, later)
    assert held.status == "cancelled"
    assert novu.cancel(transaction_id=later).result is False


def test_the_sdk_reports_a_refused_trigger_as_payload_validation(
    novu: Novu, organisation_id: uuid.UUID
) -> None:
    with pytest.raises(models.PayloadValidationExceptionDto) as refused:
        novu.trigger(
            trigger_event_request_dto=models.TriggerEventRequestDto(workflow_id="nope", to="x")
        )
    assert [error.field for error in refused.value.data.errors] == ["name"]


def test_the_sdk_broadcasts_to_every_subscriber(
    novu: Novu, organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wire(fake_provider, organisation_id)
    for name in ("ada", "bo", "cy"):
        subscriber(organisation_id, name, first_name=name.title())
    workflow(organisation_id, "news", [EMAIL_STEP])
    answer = novu.trigger_broadcast(
        trigger_event_to_all_request_dto=models.TriggerEventToAllRequestDto(
            name="news", payload={"code": "9"}
        )
    )
    assert answer.result.acknowledged and answer.result.transaction_id
    views = wait_until_terminal(organisation_id, answer.result.transaction_id)
    assert sorted((v.subscriber, v.status) for v in views) == [
        ("ada", "sent"), ("bo", "sent"), ("cy", "sent"),
    ]  # fmt: skip


def test_a_trigger_is_accepted_while_the_broker_is_down(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer, tmp_path: Path
) -> None:
    """The API process's broker is a closed port: the trigger is committed to the outbox and
    answered 201, and the session's sweeper (beat, on the real broker) hands it to the worker."""
    wire(fake_provider, organisation_id)
    subscriber(organisation_id, "ada", first_name="Ada")
    workflow(organisation_id, "code", [EMAIL_STEP])
    port = free_port()
    environment = {
        **os.environ,
        "DISPATCHER_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0",
        "DISPATCHER_REDIS_URL": REDIS_URL,
    }
    with (
        running_api(port=port, log_file=tmp_path / "api.log", environment=environment),
        Novu(
            server_url=f"http://127.0.0.1:{port}", secret_key=create_key(organisation_id, "k").key
        ) as novu,
    ):
        answer = novu.trigger(
            trigger_event_request_dto=models.TriggerEventRequestDto(
                workflow_id="code", to="ada", payload={"code": "7"}
            )
        )
    assert answer.result.status == models.TriggerEventResponseDtoStatus.PROCESSED
    [view] = wait_until_terminal(organisation_id, answer.result.transaction_id or "")
    assert view.status == "sent"
