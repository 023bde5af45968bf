"""Agent tools: grants decide who may invoke them, and the send takes the normal path."""

from __future__ import annotations

import uuid

import pytest

from dispatcher import Err, Ok, run_action
from dispatcher.dev.fakeserver import FakeProviderServer
from dispatcher.results import ErrorCode
from models import Notification
from tests.dispatcher.notify_support import act, attempts, subscriber, wait_until_terminal, wire
from tests.dispatcher.support import fetch, on_worker

pytestmark = pytest.mark.usefixtures("worker")


def test_invoking_a_tool_needs_a_grant_and_sends_through_its_integration_first(
    organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wiring = wire(fake_provider, organisation_id, names=("primary", "tool-mail"))
    subscriber(organisation_id, "ada")
    tool = act(organisation_id, "create_tool", {
        "name": "mailer", "action": "sendEmail", "integration_id": str(wiring.integrations["tool-mail"])})  # fmt: skip
    user = act(organisation_id, "create_user", {"name": "Bo"})
    agent = act(
        organisation_id, "create_agent", {"name": "Helper", "description": "", "kind": "user_agent"}
    )
    group = act(organisation_id, "create_group", {"name": "Senders"})
    call = {"tool_id": str(tool), "to": ["ada"], "subject": "Report", "body": "Done."}

    refused = on_worker("invoke_tool", {**call, "invoked_by_user": str(user)}, organisation_id)
    assert isinstance(refused, Err)
    assert refused.code == ErrorCode.FORBIDDEN

    act(organisation_id, "add_group_member", {"group_id": str(group), "user_id": str(user)})
    act(organisation_id, "grant_access", {"resource_type": "tool", "resource_id": str(tool),
                                          "grantee_type": "group", "grantee_id": str(group)})  # fmt: skip
    sent = on_worker(
        "invoke_tool",
        {**call, "invoked_by_user": str(user), "invocation_id": "inv-1"},
        organisation_id,
    )
    assert isinstance(sent, Ok), sent
    [view] = wait_until_terminal(organisation_id, sent.value["transaction_id"])
    assert (view.status, view.integration) == ("sent", "tool-mail")
    assert attempts(view.delivery_id) == [("tool-mail", "sent", 200)]
    notification = fetch(Notification, uuid.UUID(sent.value["notification_ids"][0]))
    assert notification.actor is not None
    assert notification.actor["invoked_by_user"] == str(user)
    assert notification.actor["tool_id"] == str(tool)

    again = on_worker(
        "invoke_tool",
        {**call, "invoked_by_user": str(user), "invocation_id": "inv-1"},
        organisation_id,
    )
    assert isinstance(again, Ok)
    assert again.value["duplicate"] is True

    by_agent = run_action(
        "invoke_tool", {**call, "invoked_by_agent": str(agent)}, organisation_id=organisation_id
    )
    assert isinstance(by_agent, Err)
    assert by_agent.code == ErrorCode.FORBIDDEN
    grant = act(organisation_id, "grant_access", {"resource_type": "tool", "resource_id": str(tool),
                                                  "grantee_type": "agent", "grantee_id": str(agent)})  # fmt: skip
    assert isinstance(
        run_action(
            "invoke_tool", {**call, "invoked_by_agent": str(agent)}, organisation_id=organisation_id
        ),
        Ok,
    )
    act(organisation_id, "revoke_access", {"grant_id": str(grant)})
    revoked = run_action(
        "invoke_tool", {**call, "invoked_by_agent": str(agent)}, organisation_id=organisation_id
    )
    assert isinstance(revoked, Err)
    assert revoked.code == ErrorCode.FORBIDDEN


def test_a_tool_that_sends_nothing_and_a_tool_of_another_organisation_are_errs(
    organisation_id: uuid.UUID, postgres_url: str
) -> None:
    from dispatcher import create_organisation

    user = act(organisation_id, "create_user", {"name": "Bo"})
    search = act(organisation_id, "create_tool", {"name": "search", "action": "webSearch"})
    result = run_action("invoke_tool", {"tool_id": str(search), "invoked_by_user": str(user), "to": ["x"], "body": "b"},
                        organisation_id=organisation_id)  # fmt: skip
    assert isinstance(result, Err)
    assert "webSearch" in result.message
    other = create_organisation("Other")
    foreign = act(other, "create_tool", {"name": "mailer", "action": "sendEmail"})
    result = run_action("invoke_tool", {"tool_id": str(foreign), "invoked_by_user": str(user), "to": ["x"], "body": "b"},
                        organisation_id=organisation_id)  # fmt: skip
    assert isinstance(result, Err)
    assert result.code == ErrorCode.NOT_FOUND
