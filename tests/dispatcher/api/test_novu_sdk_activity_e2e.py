"""Novu's own Python SDK reading the activity feed of a real ``dispatcher api`` process: a
trigger the session's real worker sent, listed and retrieved, every answer parsed by the SDK."""

from __future__ import annotations

import uuid

import pytest
from novu_py import Novu, models

from dispatcher.dev.fakeserver import FakeProviderServer
from tests.dispatcher.notify_support import (
    EMAIL_STEP,
    subscriber,
    wait_until_terminal,
    wire,
    workflow,
)

pytestmark = pytest.mark.usefixtures("worker")


def test_the_sdk_lists_and_retrieves_notifications(
    novu: Novu, organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wire(fake_provider, organisation_id)
    subscriber(organisation_id, "ada", first_name="Ada")
    workflow(organisation_id, "code", [EMAIL_STEP])
    transaction = novu.trigger(
        trigger_event_request_dto=models.TriggerEventRequestDto(
            workflow_id="code", to="ada", payload={"code": "1234"}
        )
    ).result.transaction_id
    assert transaction is not None
    wait_until_terminal(organisation_id, transaction)

    page = novu.notifications.list(
        request=models.NotificationsControllerListNotificationsRequest(transaction_id=transaction)
    ).result
    assert (page.has_more, page.page, page.page_size) == (False, 0, 10)
    [listed] = page.data
    assert (listed.transaction_id, listed.subscriber_id) == (transaction, "ada")
    assert listed.channels == [models.StepTypeEnum.EMAIL]
    assert listed.template is not None and listed.template.triggers[0].identifier == "code"
    assert listed.id is not None

    retrieved = novu.notifications.retrieve(notification_id=listed.id).result
    assert (retrieved.id, retrieved.transaction_id) == (listed.id, transaction)
    assert retrieved.subscriber is not None and retrieved.subscriber.subscriber_id == "ada"

    empty = novu.notifications.list(
        request=models.NotificationsControllerListNotificationsRequest(subscriber_ids=["nobody"])
    ).result
    assert (empty.data, empty.has_more) == ([], False)


def test_the_sdk_parses_the_deliveries_as_jobs_with_their_attempts(
    novu: Novu, organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wire(fake_provider, organisation_id, behaviours={"primary": {"default": "401"}})
    subscriber(organisation_id, "ada", first_name="Ada")
    workflow(organisation_id, "code", [EMAIL_STEP])
    transaction = novu.trigger(
        trigger_event_request_dto=models.TriggerEventRequestDto(
            workflow_id="code", to="ada", payload={"code": "1234"}
        )
    ).result.transaction_id
    assert transaction is not None
    [view] = wait_until_terminal(organisation_id, transaction)
    assert view.status == "sent"

    [listed] = novu.notifications.list(
        request=models.NotificationsControllerListNotificationsRequest(transaction_id=transaction)
    ).result.data
    assert listed.jobs is not None
    [job] = listed.jobs
    assert (job.type, job.status) == (models.ActivityNotificationJobResponseDtoType.EMAIL,
                                      "completed")  # fmt: skip
    assert listed.id is not None
    retrieved = novu.notifications.retrieve(notification_id=listed.id).result
    assert retrieved.jobs is not None
    [job] = retrieved.jobs
    assert job.id == view.delivery_id and job.step.template_id == retrieved.template_id
    # The fake providers are this project's own: the job names Novu's generic email provider.
    assert job.provider_id is models.ProvidersIDEnum.EMAIL_WEBHOOK
    assert [(d.status, d.source, d.is_retry) for d in job.execution_details] == [
        (models.ExecutionDetailsStatusEnum.FAILED, models.ExecutionDetailsSourceEnum.CREDENTIALS,
         False),
        (models.ExecutionDetailsStatusEnum.SUCCESS, models.ExecutionDetailsSourceEnum.INTERNAL,
         True),
    ]  # fmt: skip
    assert "HTTP 401" in job.execution_details[0].detail
    assert "SECRET" not in str(retrieved)
