"""Tenant isolation: organisation A, using organisation B's ids and keys, reaches nothing of B.

Both organisations carry the same names (organisation, subscriber external ids, topic and
workflow keys); B has a few keys of its own. Every action of the catalogue is tried in A with
each id it references taken from B, and triggers are tried with B's keys; every attempt is an
``Err`` or a producer error, B's rows are unchanged, and B's integration receives no request.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from dispatcher import Err, Ok, TriggerError, enqueue_action, run_action, trigger, trigger_bulk
from dispatcher.actions import catalogue
from dispatcher.actions.base import Ref
from dispatcher.cli.main import main as cli
from dispatcher.dev.fakeserver import FakeProviderServer
from dispatcher.organisations import create_organisation
from dispatcher.results import ErrorCode
from dispatcher.runtime.resources import database
from models import Notification, Subscriber
from tests.dispatcher.notify_support import wait_until_terminal
from tests.dispatcher.support import subscriber_row_id
from tests.security.support import (
    BASE_ARGUMENTS,
    Names,
    World,
    build_world,
    email_step,
    open_deliveries,
    send_parked,
    snapshot,
    table_of,
)

pytestmark = pytest.mark.usefixtures("postgres_url", "redis_url")

#: Id fields that are not ``Ref`` fields: the handler checks them itself (table per field).
MANUAL_ID_FIELDS = {
    ("grant_access", "resource_id"): "tools",
    ("grant_access", "grantee_id"): "agents",
    # Subscribers are named by external id, or by row id (the one tried here from B).
    ("create_topic", "subscriber_ids"): "subscribers",
    ("subscribe_to_topic", "subscriber_ids"): "subscribers",
    ("set_preference", "subscriber_id"): "subscribers",
    ("list_inbox", "subscriber_id"): "subscribers",
    ("mark_inbox", "subscriber_id"): "subscribers",
}

#: (type field, id field, table) of grants made in A to B's rows.
GRANT_VARIANTS = [
    ("resource_type", "resource_id", "integrations"),
    ("grantee_type", "grantee_id", "groups"),
    ("grantee_type", "grantee_id", "users"),
]

#: Keys (not ids) taken from B: ``Err`` when A has no such key, else a row of A's own.
KEY_ATTACKS: list[tuple[str, str, Callable[[Names], Any], bool]] = [
    # Before create_subscriber below makes B's external id one of A's own.
    ("set_preference", "subscriber_id", lambda n: n.subscriber_b_only, True),
    ("list_inbox", "subscriber_id", lambda n: n.subscriber_b_only, True),
    ("mark_inbox", "subscriber_id", lambda n: n.subscriber_b_only, True),
    ("create_topic", "subscriber_ids", lambda n: [n.subscriber_b_only], True),
    ("subscribe_to_topic", "subscriber_ids", lambda n: [n.subscriber_b_only], True),
    ("invoke_tool", "to", lambda n: [n.subscriber_b_only], True),
    ("invoke_tool", "to", lambda n: [{"topic": n.topic_b_only}], True),
    ("create_schedule", "workflow", lambda n: n.workflow_b_only, True),
    # Before create_workflow below makes B's workflow key one of A's own.
    ("update_workflow", "key", lambda n: n.workflow_b_only, True),
    ("delete_workflow", "key", lambda n: n.workflow_b_only, True),
    ("create_subscriber", "external_id", lambda n: n.subscriber_b_only, False),
    ("create_topic", "key", lambda n: n.topic_b_only, False),
    ("create_workflow", "key", lambda n: n.workflow_b_only, False),
    ("create_subscriber", "external_id", lambda n: n.subscribers[0], True),  # A's own: conflict
]


def reference_fields(action: str) -> list[tuple[str, str]]:
    """(field, table) of every id the action's arguments reference."""
    spec = catalogue.get(action)
    fields = [(name, model.__tablename__) for name, model in spec.references()]
    fields += [
        (name, table) for (owner, name), table in MANUAL_ID_FIELDS.items() if owner == action
    ]
    return fields


def attack(world_a: World, world_b: World, action: str, field: str, table: str) -> dict[str, Any]:
    arguments = BASE_ARGUMENTS[action](world_a)
    if (action, field) == ("invoke_tool", "invoked_by_agent"):
        del arguments["invoked_by_user"]  # exactly one caller
    foreign = world_b.s(table)
    current = arguments.get(field)
    arguments[field] = [*current, foreign] if isinstance(current, list) else foreign
    return arguments


def assert_refused(result: Any, foreign: str, field: str) -> None:
    assert isinstance(result, Err), result
    assert result.code == ErrorCode.NOT_FOUND, result
    assert foreign in result.message or foreign in str(result.details), result
    assert field in result.message, result


#: Each example costs two organisations; a failure is reported as found, not shrunk for minutes.
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)

label = (
    st.text(st.characters(exclude_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=20)
    .map(str.strip)
    .filter(bool)
)
key = st.from_regex(r"\A[a-z0-9][a-z0-9_.-]{0,15}\Z")


@st.composite
def colliding_names(draw: st.DrawFn) -> Names:
    subscribers = draw(st.lists(label, min_size=2, max_size=3, unique=True))
    topic, topic_b = draw(st.lists(key, min_size=2, max_size=2, unique=True))
    workflow, workflow_b = draw(st.lists(key, min_size=2, max_size=2, unique=True))
    subscriber_b = draw(label.filter(lambda value: value not in subscribers))
    return Names(
        draw(label), tuple(subscribers), topic, workflow, subscriber_b, topic_b, workflow_b
    )


def two_worlds(names: Names, fake: FakeProviderServer) -> tuple[World, World]:
    a = create_organisation(names.organisation)
    b = create_organisation(names.organisation)
    return build_world(a, names, fake, b_only=False), build_world(b, names, fake, b_only=True)


def test_every_action_is_covered_and_every_id_field_is_checked() -> None:
    names = catalogue.names()
    assert set(names) <= set(BASE_ARGUMENTS), "add base arguments for the new actions"
    for spec in catalogue:
        for field_name, info in spec.args_model.model_fields.items():
            annotation = repr(info.annotation)
            if "UUID" not in annotation:
                continue
            is_ref = any(isinstance(marker, Ref) for marker in info.metadata)
            assert is_ref or (spec.name, field_name) in MANUAL_ID_FIELDS, (
                f"{spec.name}.{field_name} takes an id that is not checked against the "
                "caller's organisation"
            )


def test_the_base_arguments_are_accepted_in_their_own_organisation(
    fake_provider: FakeProviderServer,
) -> None:
    names = Names("Org", ("ada", "bo"), "team", "welcome", "cy", "b-topic", "b-flow")
    world = build_world(create_organisation("Own"), names, fake_provider, b_only=False)
    # Last: the ones that take away what the others need.
    finishing = [
        "deactivate_integration",
        "revoke_access",
        "deactivate_schedule",
        "delete_workflow",
    ]
    for action in sorted(catalogue.names(), key=lambda name: (name in finishing, name)):
        result = run_action(
            action, BASE_ARGUMENTS[action](world), organisation_id=world.organisation_id
        )
        assert isinstance(result, Ok), (action, result)


@settings(max_examples=5, deadline=None, derandomize=True, database=None, phases=NO_SHRINK)
@given(names=colliding_names())
def test_organisation_a_reaches_nothing_of_b_with_b_s_ids_and_keys(
    fake_provider: FakeProviderServer, names: Names
) -> None:
    world_a, world_b = two_worlds(names, fake_provider)
    org_a = world_a.organisation_id
    before = snapshot(world_b.organisation_id)

    for action in catalogue.names():
        for field, table in reference_fields(action):
            arguments = attack(world_a, world_b, action, field, table)
            result = run_action(action, arguments, organisation_id=org_a)
            assert_refused(result, world_b.s(table), field)
    # Grants name their tables through a type field: every kind of resource and grantee.
    for kind, field, table in GRANT_VARIANTS:
        arguments = {**BASE_ARGUMENTS["grant_access"](world_a), kind: table.rstrip("s"),
                     field: world_b.s(table)}  # fmt: skip
        result = run_action("grant_access", arguments, organisation_id=org_a)
        assert_refused(result, world_b.s(table), field)

    refused_triggers = [
        ((names.workflow_b_only, names.subscribers[0]), "workflow"),
        ((names.workflow, names.subscriber_b_only), "to.0"),
        ((names.workflow, {"topic": names.topic_b_only}), "to.0.topic"),
        ((names.workflow, [names.subscribers[0], names.subscriber_b_only]), "to.1"),
    ]
    for (workflow, to), field in refused_triggers:
        with pytest.raises(TriggerError) as caught:
            trigger(org_a, workflow, to, {"code": "2"})
        assert field in [error["field"] for error in caught.value.errors]
    with pytest.raises(TriggerError) as caught:
        trigger_bulk(org_a, [{"workflow": names.workflow, "to": names.subscribers[0]},
                             {"workflow": names.workflow_b_only, "to": names.subscribers[0]}])  # fmt: skip
    assert caught.value.errors[0]["field"] == "events.1.workflow"

    for action, field, value, refused in KEY_ATTACKS:
        assert action in catalogue.names(), action
        arguments = {**BASE_ARGUMENTS[action](world_a), field: value(names)}
        result = run_action(action, arguments, organisation_id=org_a)
        if refused:
            assert isinstance(result, Err), (action, field, result)
        else:
            assert isinstance(result, Ok), (action, field, result)
            row_id = (
                subscriber_row_id(org_a, result.value)
                if action == "create_subscriber"
                else uuid.UUID(result.value)
            )
            assert table_of(row_id) is not None
            assert table_of(row_id)[1] == org_a  # type: ignore[index]

    # Colliding keys resolve to A's own rows; B's transaction id is no duplicate in A; an inline
    # subscriber with B's external id becomes A's; B's integration named in overrides is ignored.
    accepted = [
        trigger(org_a, names.workflow, list(names.subscribers), {"code": "3"},
                transaction_id=world_b.transaction_id),
        trigger(org_a, names.workflow, {"topic": names.topic}, {"code": "4"},
                overrides={"email": {"integration_id": world_b.s("integrations")}}),
        trigger(org_a, names.workflow, {"subscriber_id": names.subscriber_b_only,
                                        "email": "new@example.com"}, {"code": "5"}),
    ]  # fmt: skip
    assert not any(receipt.duplicate for receipt in accepted)
    with database().session() as session:
        for receipt in accepted:
            for notification_id in receipt.notification_ids:
                notification = session.get(Notification, uuid.UUID(notification_id))
                assert notification is not None
                assert notification.organisation_id == org_a
                assert notification.workflow_id == world_a.ids["workflows"]
                owner = session.scalar(
                    select(Subscriber.organisation_id).where(
                        Subscriber.id == notification.subscriber_id
                    )
                )
                assert owner == org_a
    assert len(accepted[0].notification_ids) == len(names.subscribers)

    send_parked(org_a)
    assert not open_deliveries(org_a)
    paths = {request.path for request in fake_provider.state.requests}
    assert world_a.path in paths
    assert world_b.path not in paths
    assert snapshot(world_b.organisation_id) == before


@pytest.mark.usefixtures("worker")
def test_through_the_worker_b_s_ids_are_not_found_and_b_s_integration_is_never_used(
    fake_provider: FakeProviderServer,
) -> None:
    names = Names("Twin", ("ada", "bo"), "team", "welcome", "cy", "only-b", "only-b-flow")
    world_a, world_b = two_worlds(names, fake_provider)
    org_a = world_a.organisation_id
    before = snapshot(world_b.organisation_id)
    for action, field, table in [
        ("send_agent_message", "thread_id", "agent_threads"),
        ("update_integration", "integration_id", "integrations"),
        ("invoke_tool", "tool_id", "tools"),
        ("mark_inbox", "message_ids", "inbox_messages"),
        ("grant_access", "resource_id", "tools"),
        ("create_agent", "delegates_to", "agents"),
    ]:
        handle = enqueue_action(action, attack(world_a, world_b, action, field, table),
                                organisation_id=org_a)  # fmt: skip
        assert_refused(handle.get(timeout=30), world_b.s(table), field)

    # Not parked: the worker sends it at once, through A's integration only.
    steps = [email_step()]
    run_action(
        "create_workflow", {"key": "now", "name": "now", "steps": steps}, organisation_id=org_a
    )
    receipt = trigger(org_a, "now", list(names.subscribers), {"code": "7"},
                      overrides={"email": {"integration_id": world_b.s("integrations")}})  # fmt: skip
    views = wait_until_terminal(org_a, receipt.transaction_id)
    assert {(view.status, view.integration) for view in views} == {("sent", names.organisation)}
    assert world_b.path not in {request.path for request in fake_provider.state.requests}
    assert snapshot(world_b.organisation_id) == before

    runner = CliRunner()
    status = runner.invoke(cli, ["status", world_b.transaction_id, "--org", str(org_a)])
    assert status.exit_code != 0
    assert "no transaction" in status.output
    listed = runner.invoke(cli, ["integrations", "list", "--org", str(org_a)])
    assert listed.exit_code == 0, listed.output
    assert world_a.s("integrations") in listed.output
    assert world_b.s("integrations") not in listed.output
