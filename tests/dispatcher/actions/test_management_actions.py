"""The actions the system needs to manage its own data, through the real worker."""

from __future__ import annotations

import uuid

import pytest

from dispatcher import ActionArgumentsError, Err, Ok, enqueue_action, run_action
from dispatcher.results import ErrorCode
from models import (
    Grant,
    Group,
    Integration,
    IntegrationStatus,
    Membership,
    Preference,
    Subscriber,
    Topic,
    TopicSubscription,
    Workflow,
    WorkflowStep,
)
from tests.dispatcher.support import (
    count,
    created_id,
    fetch,
    on_worker,
    raw_on_worker,
    subscriber_row_id,
)

pytestmark = pytest.mark.usefixtures("worker")

FAKE_CREDENTIALS = {"api_key": "SECRET-fake-key-123"}


def integration(organisation_id: uuid.UUID, **fields: object) -> uuid.UUID:
    arguments = {"name": "Mail", "provider": "fake", "credentials": FAKE_CREDENTIALS, **fields}
    return created_id(on_worker("create_integration", arguments, organisation_id))


def test_create_integration_defaults_channel_and_encrypts(organisation_id: uuid.UUID) -> None:
    row = fetch(Integration, integration(organisation_id, meta={"team": "growth"}))
    assert row.provider == "fake"
    assert row.channel_type.value == "email"
    assert row.status is IntegrationStatus.ACTIVE
    assert row.credentials == FAKE_CREDENTIALS
    assert row.meta == {"team": "growth"}


def test_one_primary_per_channel_and_environment(organisation_id: uuid.UUID) -> None:
    first = integration(organisation_id, is_primary=True)
    second = integration(organisation_id, is_primary=True)
    assert not fetch(Integration, first).is_primary
    assert fetch(Integration, second).is_primary
    assert isinstance(
        on_worker("set_primary_integration", {"integration_id": str(first)}, organisation_id), Ok
    )
    assert fetch(Integration, first).is_primary
    assert not fetch(Integration, second).is_primary


def test_update_and_deactivate_integration(organisation_id: uuid.UUID) -> None:
    row_id = integration(organisation_id, is_primary=True)
    updated = on_worker(
        "update_integration",
        {"integration_id": str(row_id), "name": "Renamed", "priority": 5,
         "credentials": {"api_key": "SECRET-rotated-456"}},
        organisation_id,
    )  # fmt: skip
    assert isinstance(updated, Ok)
    row = fetch(Integration, row_id)
    assert (row.name, row.priority, row.credentials) == (
        "Renamed",
        5,
        {"api_key": "SECRET-rotated-456"},
    )
    assert row.credentials_rotated_at is not None
    assert isinstance(
        on_worker("deactivate_integration", {"integration_id": str(row_id)}, organisation_id), Ok
    )
    row = fetch(Integration, row_id)
    assert row.status is IntegrationStatus.INACTIVE
    assert not row.is_primary
    refused = on_worker("set_primary_integration", {"integration_id": str(row_id)}, organisation_id)
    assert isinstance(refused, Err) and "inactive" in refused.message


def test_credentials_that_do_not_fit_the_provider_name_the_field(
    organisation_id: uuid.UUID,
) -> None:
    with pytest.raises(ActionArgumentsError) as caught:
        enqueue_action(
            "create_integration",
            {"name": "x", "provider": "fake", "credentials": {"token": "SECRET-x"}},
            organisation_id=organisation_id,
        )
    message = str(caught.value)
    assert "api_key" in message and "credentials" in message
    assert "SECRET-x" not in message
    unknown = raw_on_worker(
        "create_integration", organisation_id,
        {"name": "x", "provider": "nope", "credentials": {}},
    )  # fmt: skip
    assert isinstance(unknown, Err) and "provider" in unknown.message


def test_groups_users_and_membership(organisation_id: uuid.UUID) -> None:
    group = created_id(on_worker("create_group", {"name": "Tutors"}, organisation_id))
    user = created_id(
        on_worker("create_user", {"name": "Bo", "email": "bo@example.com"}, organisation_id)
    )
    member = on_worker(
        "add_group_member", {"group_id": str(group), "user_id": str(user)}, organisation_id
    )
    assert fetch(Membership, created_id(member)).user_id == user
    assert fetch(Group, group).name == "Tutors"
    twice = on_worker(
        "add_group_member", {"group_id": str(group), "user_id": str(user)}, organisation_id
    )
    assert isinstance(twice, Err) and twice.code == ErrorCode.CONFLICT
    bad_email = raw_on_worker("create_user", organisation_id, {"name": "x", "email": "nope"})
    assert isinstance(bad_email, Err) and "email" in bad_email.message


def test_subscribers_topics_and_preferences(organisation_id: uuid.UUID) -> None:
    created = on_worker(
        "create_subscriber",
        {"external_id": "u-1", "email": "u1@example.com", "phone": "+447700900123",
         "channels": {"push": {"device_tokens": ["tok"]}}, "data": {"plan": "pro"}},
        organisation_id,
    )  # fmt: skip
    # The subscriber is named by the application's id for it, in the answer and everywhere.
    assert created == Ok("u-1")
    subscriber = "u-1"
    row = fetch(Subscriber, subscriber_row_id(organisation_id, subscriber))
    assert (row.external_id, row.phone, row.channels["push"]) == (
        "u-1",
        "+447700900123",
        {"device_tokens": ["tok"]},
    )
    topic = created_id(
        on_worker(
            "create_topic",
            {"key": "news", "name": "News", "subscriber_ids": [subscriber]},
            organisation_id,
        )
    )
    assert fetch(Topic, topic).key == "news"
    again = on_worker(
        "subscribe_to_topic",
        {"topic_id": str(topic), "subscriber_ids": [subscriber, str(row.id)]},
        organisation_id,
    )
    assert again == Ok(0)
    assert count(TopicSubscription, topic_id=topic) == 1
    first = on_worker(
        "set_preference",
        {"subscriber_id": subscriber, "channel_type": "sms", "enabled": False},
        organisation_id,
    )
    second = on_worker(
        "set_preference",
        # The row's id names the same subscriber.
        {"subscriber_id": str(row.id), "channel_type": "sms", "enabled": True},
        organisation_id,
    )
    assert created_id(first) == created_id(second)
    assert fetch(Preference, created_id(second)).enabled is True
    bad_phone = raw_on_worker(
        "create_subscriber", organisation_id, {"external_id": "u-2", "phone": "0123"}
    )
    assert isinstance(bad_phone, Err) and "phone" in bad_phone.message


def test_create_workflow_with_ordered_steps(organisation_id: uuid.UUID) -> None:
    result = on_worker(
        "create_workflow",
        {"key": "welcome", "name": "Welcome", "critical": True, "steps": [
            {"kind": "email", "template": {"subject": "Hi {{ subscriber.first_name }}", "body": "Welcome"}},
            {"kind": "delay", "config": {"seconds": 60}},
            {"kind": "sms", "template": {"body": "Welcome!"}, "conditions": [{"field": "payload.vip", "op": "eq", "value": True}]},
        ]},
        organisation_id,
    )  # fmt: skip
    workflow_id = created_id(result)
    assert fetch(Workflow, workflow_id).critical is True
    assert count(WorkflowStep, workflow_id=workflow_id) == 3
    broken = raw_on_worker(
        "create_workflow", organisation_id,
        {"key": "broken", "name": "B", "steps": [{"kind": "email", "template": {"body": "{{ oops"}}]},
    )  # fmt: skip
    assert isinstance(broken, Err) and "steps.0.template" in broken.message
    assert count(Workflow, key="broken") == 0


def test_grants_check_both_rows_and_revoke(organisation_id: uuid.UUID) -> None:
    integration_id = integration(organisation_id)
    group = created_id(run_action("create_group", {"name": "Ops"}, organisation_id=organisation_id))
    arguments = {"resource_type": "integration", "resource_id": str(integration_id),
                 "grantee_type": "group", "grantee_id": str(group)}  # fmt: skip
    grant = created_id(on_worker("grant_access", arguments, organisation_id))
    assert created_id(on_worker("grant_access", arguments, organisation_id)) == grant
    wrong_kind = on_worker("grant_access", {**arguments, "grantee_type": "user"}, organisation_id)
    assert isinstance(wrong_kind, Err) and "grantee_id" in wrong_kind.message
    assert isinstance(on_worker("revoke_access", {"grant_id": str(grant)}, organisation_id), Ok)
    assert fetch(Grant, grant).revoked_at is not None
