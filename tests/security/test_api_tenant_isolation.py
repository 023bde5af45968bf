"""Tenant isolation over HTTP: organisation A's API key, used against organisation B's ids on
every route of the API, gets exactly what it gets for a missing id, and reaches nothing of B.

Both organisations carry the same names (as in :mod:`tests.security.test_tenant_isolation`);
B's rows include parked deliveries (nothing sends them during the test) and the result of an
action under its task id.
:data:`ATTACKS` says how to fill the ids of every route: the coverage test walks ``app.routes``,
so a route added later fails it until the table says how to attack it. Hypothesis then picks a
route and, for each id in it, one of B's ids or a random one; the answer (status, and body but
for ``timestamp`` and ``path``, with the ids sent replaced by their slot's name) must equal the
answer to the same call with every id replaced by a missing one of the same form. Afterwards
B's rows (and A's, but for its key's last use and its action ledger) are unchanged and B's
integration was never asked.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from dispatcher.api import create_app
from dispatcher.api.keys import create_key
from dispatcher.api.rate_limit import api_rate_store
from dispatcher.api.routers import inbox as inbox_routes
from dispatcher.dev.fakeserver import FakeProviderServer
from dispatcher.organisations import create_organisation
from dispatcher.runtime.resources import database
from models import ActionRun, ApiKey, Delivery, Notification
from tests.security.support import Names, World, build_world, snapshot

pytestmark = pytest.mark.usefixtures("postgres_url", "redis_url")

NAMES = Names("Twin", ("ada", "bo"), "team", "welcome", "cy-only-b", "topic-only-b", "flow-only-b")
SLACK = {"providerId": "slack", "credentials": {"webhookUrl": "https://hooks.slack.com/s/T/B/x"}}


@dataclass
class Tenant:
    world: World
    key: str
    notification_ids: list[str]
    delivery_ids: list[str]
    task_id: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"ApiKey {self.key}"}

    @property
    def organisation_id(self) -> uuid.UUID:
        return self.world.organisation_id


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def is_task_id(value: str) -> bool:
    """The organisation's id, a dot, the task's."""
    organisation, dot, task = value.partition(".")
    return bool(dot) and is_uuid(organisation) and is_uuid(task)


def missing_like(value: str) -> str:
    """An id of the same form as ``value`` that names nothing."""
    if is_uuid(value):
        return str(uuid.uuid4())
    if is_task_id(value):
        return f"{uuid.uuid4()}.{uuid.uuid4()}"
    return f"nobody-{uuid.uuid4().hex[:12]}"


#: Names either organisation has: a random key must not be one of them.
TAKEN = {*NAMES.subscribers, NAMES.topic, NAMES.workflow, NAMES.subscriber_b_only,
         NAMES.topic_b_only, NAMES.workflow_b_only, "idem"}  # fmt: skip


def random_like(value: str) -> st.SearchStrategy[str]:
    """Random ids of the form of ``value`` (naming nothing, as far as anyone can tell)."""
    if is_uuid(value):
        return st.uuids().map(str)
    if is_task_id(value):
        return st.tuples(st.uuids(), st.uuids()).map(lambda pair: f"{pair[0]}.{pair[1]}")
    return st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,29}\Z").filter(lambda key: key not in TAKEN)


#: B's ids of each kind a route or body takes (the ones A could try).
FOREIGN: dict[str, Callable[[Tenant], list[str]]] = {
    # Subscribers and topics are named by the application's key; a row id is tried too.
    "subscriber": lambda b: [b.world.names.subscriber_b_only, b.world.s("subscribers")],
    "topic": lambda b: [b.world.names.topic_b_only, b.world.s("topics")],
    "workflow": lambda b: [b.world.names.workflow_b_only, b.world.s("workflows")],
    "integration": lambda b: [b.world.s("integrations")],
    "suppression": lambda b: [b.world.s("suppressions")],
    "webhook_endpoint": lambda b: [b.world.s("webhook_endpoints")],
    "subscriber_row": lambda b: [b.world.s("subscribers"), b.world.s("subscribers2")],
    "inbox_message": lambda b: [b.world.s("inbox_messages")],
    "notification": lambda b: b.notification_ids,
    "delivery": lambda b: b.delivery_ids,
    "transaction": lambda b: [b.world.transaction_id],
    "task": lambda b: [b.task_id],
}


@dataclass(frozen=True)
class Slot:
    """An id of a kind of :data:`FOREIGN`: one of B's or a missing one, drawn per call."""

    kind: str


@dataclass(frozen=True)
class Own:
    """A fixed value: A's own id (or a name that is no id), the same in both calls."""

    value: Callable[[Tenant], str]


Fill = Slot | Own


def constant(value: str) -> Own:
    return Own(lambda a: value)


OWN_SUBSCRIBER = Own(lambda a: a.world.names.subscribers[0])
OWN_TOPIC = Own(lambda a: a.world.names.topic)
OWN_WORKFLOW = Own(lambda a: a.world.names.workflow)
OWN_NOTIFICATION = Own(lambda a: a.notification_ids[0])
OWN_SUBSCRIBER_ROW = Own(lambda a: a.world.s("subscribers"))
WAIT = {"wait": 30}


@dataclass(frozen=True)
class Attack:
    method: str
    route: str
    params: dict[str, Fill] = field(default_factory=dict)
    #: JSON body; a :class:`Slot` or :class:`Own` anywhere in it is filled like a parameter.
    body: Any = None
    query: dict[str, Any] = field(default_factory=dict)

    def slots(self) -> list[Slot]:
        found: list[Slot] = []

        def walk(value: Any) -> None:
            if isinstance(value, Slot):
                found.append(value)
            elif isinstance(value, dict):
                for item in value.values():
                    walk(item)
            elif isinstance(value, list):
                for item in value:
                    walk(item)

        walk(list(self.params.values()))
        walk(self.body)
        return found


ATTACKS: list[Attack] = [
    Attack("GET", "/v2/subscribers/{subscriberId}", {"subscriberId": Slot("subscriber")}),
    Attack("PATCH", "/v2/subscribers/{subscriberId}", {"subscriberId": Slot("subscriber")},
           {"firstName": "Mallory", "email": "mallory@example.com"}),
    Attack("DELETE", "/v2/subscribers/{subscriberId}", {"subscriberId": Slot("subscriber")}),
    Attack("GET", "/v2/subscribers/{subscriberId}/preferences",
           {"subscriberId": Slot("subscriber")}),
    Attack("PATCH", "/v2/subscribers/{subscriberId}/preferences",
           {"subscriberId": Slot("subscriber")}, {"channels": {"email": True, "sms": True}}),
    Attack("PATCH", "/v2/subscribers/{subscriberId}/preferences",
           {"subscriberId": Slot("subscriber")},
           {"workflowId": Slot("workflow"), "channels": {"email": False}}),
    Attack("PATCH", "/v2/subscribers/{subscriberId}/preferences", {"subscriberId": OWN_SUBSCRIBER},
           {"workflowId": Slot("workflow"), "channels": {"email": False}}),
    Attack("PUT", "/v1/subscribers/{subscriberId}/credentials",
           {"subscriberId": Slot("subscriber")}, SLACK),
    Attack("PATCH", "/v1/subscribers/{subscriberId}/credentials",
           {"subscriberId": Slot("subscriber")}, SLACK),
    Attack("DELETE", "/v1/subscribers/{subscriberId}/credentials/{providerId}",
           {"subscriberId": Slot("subscriber"), "providerId": constant("slack")}),
    Attack("GET", "/v2/topics/{topicKey}", {"topicKey": Slot("topic")}),
    Attack("DELETE", "/v2/topics/{topicKey}", {"topicKey": Slot("topic")}),
    Attack("GET", "/v2/topics/{topicKey}/subscriptions", {"topicKey": Slot("topic")}),
    Attack("POST", "/v2/topics/{topicKey}/subscriptions", {"topicKey": Slot("topic")},
           {"subscriberIds": [OWN_SUBSCRIBER]}),
    Attack("POST", "/v2/topics/{topicKey}/subscriptions", {"topicKey": OWN_TOPIC},
           {"subscriberIds": [Slot("subscriber")]}),
    Attack("DELETE", "/v2/topics/{topicKey}/subscriptions", {"topicKey": Slot("topic")},
           {"subscriberIds": [OWN_SUBSCRIBER]}),
    Attack("DELETE", "/v2/topics/{topicKey}/subscriptions", {"topicKey": OWN_TOPIC},
           {"subscriberIds": [Slot("subscriber")]}),
    Attack("PUT", "/v1/integrations/{integrationId}", {"integrationId": Slot("integration")},
           {"name": "pwned", "active": False, "credentials": {"apiKey": "stolen"}}),
    Attack("DELETE", "/v1/integrations/{integrationId}", {"integrationId": Slot("integration")}),
    Attack("POST", "/v1/integrations/{integrationId}/set-primary",
           {"integrationId": Slot("integration")}),
    Attack("POST", "/v1/integrations/{integrationId}/test",
           {"integrationId": Slot("integration")}),
    Attack("GET", "/v1/notifications/{notificationId}", {"notificationId": Slot("notification")}),
    Attack("POST", "/v1/notifications/{notificationId}/deliveries/{deliveryId}/retry",
           {"notificationId": Slot("notification"), "deliveryId": Slot("delivery")}),
    Attack("POST", "/v1/notifications/{notificationId}/deliveries/{deliveryId}/retry",
           {"notificationId": OWN_NOTIFICATION, "deliveryId": Slot("delivery")}),
    Attack("DELETE", "/v1/events/trigger/{transactionId}", {"transactionId": Slot("transaction")}),
    Attack("GET", "/v1/actions/{taskId}", {"taskId": Slot("task")}),
    Attack("DELETE", "/v1/suppressions/{suppressionId}", {"suppressionId": Slot("suppression")}),
    Attack("GET", "/v1/webhooks/endpoints/{endpointId}", {"endpointId": Slot("webhook_endpoint")}),
    Attack("GET", "/v1/webhooks/endpoints/{endpointId}/deliveries",
           {"endpointId": Slot("webhook_endpoint")}),
    Attack("PATCH", "/v1/webhooks/endpoints/{endpointId}",
           {"endpointId": Slot("webhook_endpoint")},
           {"url": "http://127.0.0.1:9/stolen", "eventTypes": ["message.sent"], "enabled": False,
            "secret": "pwned-pwned-pwned-pwned"}),
    Attack("DELETE", "/v1/webhooks/endpoints/{endpointId}",
           {"endpointId": Slot("webhook_endpoint")}),
    # No API key counts here (the provider's signature does): B's integration and a missing one
    # are the same 401 to an unsigned callback, and nothing changes.
    Attack("POST", "/v1/webhooks/providers/{integrationId}",
           {"integrationId": Slot("integration")}, []),
    # Run by the worker (the answer waits for the result): B's ids are refused there.
    *(Attack("POST", "/v1/actions/{name}", {"name": constant(name)}, body, WAIT)
      for name, body in [
          ("update_integration", {"integration_id": Slot("integration"), "name": "pwned"}),
          ("set_primary_integration", {"integration_id": Slot("integration")}),
          ("deactivate_integration", {"integration_id": Slot("integration")}),
          ("set_preference", {"subscriber_id": Slot("subscriber_row"), "enabled": True}),
          ("mark_inbox", {"subscriber_id": OWN_SUBSCRIBER_ROW, "as": "read",
                          "message_ids": [Slot("inbox_message")]}),
      ]),
    Attack("POST", "/v1/events/trigger", body={"name": Slot("workflow"), "to": OWN_SUBSCRIBER}),
    Attack("POST", "/v1/events/trigger", body={"name": OWN_WORKFLOW, "to": Slot("subscriber")}),
    Attack("POST", "/v1/events/trigger",
           body={"name": OWN_WORKFLOW, "to": [OWN_SUBSCRIBER, Slot("subscriber")]}),
    Attack("POST", "/v1/events/trigger",
           body={"name": OWN_WORKFLOW, "to": {"type": "Topic", "topicKey": Slot("topic")}}),
    Attack("POST", "/v1/events/trigger/bulk", body={"events": [
        {"name": OWN_WORKFLOW, "to": OWN_SUBSCRIBER, "payload": {"code": "x"}},
        {"name": Slot("workflow"), "to": OWN_SUBSCRIBER}]}),
    Attack("POST", "/v1/events/trigger/broadcast", body={"name": Slot("workflow"), "payload": {}}),
    Attack("GET", "/v1/workflows/{key}", {"key": Slot("workflow")}),
    Attack("GET", "/v1/workflows/{key}", {"key": Slot("workflow")}, query={"version": 1}),
    Attack("GET", "/v1/workflows/{key}/versions", {"key": Slot("workflow")}),
    Attack("PUT", "/v1/workflows/{key}", {"key": Slot("workflow")},
           {"name": "pwned", "steps": [{"kind": "sms", "template": {"body": "pwned"}}]}),
    Attack("PATCH", "/v1/workflows/{key}", {"key": Slot("workflow")}, {"active": False}),
    Attack("DELETE", "/v1/workflows/{key}", {"key": Slot("workflow")}),
    Attack("POST", "/v1/preview", body={"workflow": Slot("workflow"), "step": 0,
                                        "subscriberId": OWN_SUBSCRIBER}),
    Attack("POST", "/v1/preview", body={"workflow": OWN_WORKFLOW, "step": 0,
                                        "subscriberId": Slot("subscriber")}),
]  # fmt: skip

#: Routes without an id of another organisation to try, and why.
NOT_ATTACKED: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): "no organisation's data",
    ("GET", "/readyz"): "no organisation's data",
    ("GET", "/openapi.json"): "the document",
    ("GET", "/docs"): "the document",
    ("GET", "/docs/oauth2-redirect"): "the document",
    ("GET", "/redoc"): "the document",
    ("GET", "/v1/actions"): "the catalogue, the same for everyone",
    ("POST", "/v1/webhooks/endpoints"): "names no row: creates the caller's own endpoint "
    "(tests/dispatcher/api/test_webhook_endpoints.py)",
    # The browser inbox takes a subscriber's session token, never an API key (an API key is
    # 401 there); one subscriber against another's ids: tests/dispatcher/api/inbox.
    **{
        (method, route.path): "subscriber session routes"
        for route in inbox_routes.router.routes
        for method in getattr(route, "methods", ())
    },
}
#: Routes that create: a key of B's in the body names a new row of A's own (test below).
CREATES = {("POST", "/v2/subscribers"), ("POST", "/v2/topics"), ("POST", "/v1/integrations"),
           ("POST", "/v1/workflows")}  # fmt: skip
#: Lists, with their filters by B's ids (test below).
LISTS = {
    ("GET", "/v2/subscribers"),
    ("GET", "/v2/topics"),
    ("GET", "/v1/integrations"),
    ("GET", "/v1/integrations/active"),
    ("GET", "/v1/notifications"),
    ("GET", "/v1/messages"),
    ("GET", "/v1/workflows"),
    ("GET", "/v1/suppressions"),
    ("GET", "/v1/webhooks/endpoints"),
}


def every_route(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path) of every route, through included routers too."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            context = getattr(route, "include_context", None)
            yield from every_route(included.routes, prefix + getattr(context, "prefix", ""))
            continue
        for method in sorted(set(getattr(route, "methods", None) or ()) - {"HEAD"}):
            yield method, prefix + route.path


def path_params(path: str) -> set[str]:
    return set(re.findall(r"{(\w+)}", path))


def test_every_route_is_attacked_or_listed_and_every_id_in_its_path_is_filled() -> None:
    routes = set(every_route(list(create_app().routes)))
    assert len(routes) > 30, routes  # the walk found the routers' routes, not only FastAPI's
    attacked = {(attack.method, attack.route) for attack in ATTACKS}
    unknown = routes - attacked - set(NOT_ATTACKED) - CREATES - LISTS
    assert not unknown, f"say in ATTACKS how to fill the ids of {sorted(unknown)}"
    assert attacked | set(NOT_ATTACKED) | CREATES | LISTS <= routes, "a route in a table is gone"
    for attack in ATTACKS:
        assert set(attack.params) == path_params(attack.route), attack
        for slot in attack.slots():
            assert slot.kind in FOREIGN, slot
    for method, path in routes - attacked:
        assert not path_params(path) or (method, path) in NOT_ATTACKED, (method, path)


# --- the two organisations ----------------------------------------------------------------


def api_client() -> TestClient:
    api_rate_store.cache_clear()
    return TestClient(create_app(), raise_server_exceptions=False)


def tenant(world: World) -> Tenant:
    organisation_id = world.organisation_id
    with database().session() as session:
        notifications = session.scalars(
            select(Notification.id).where(Notification.organisation_id == organisation_id)
        ).all()
        deliveries = session.scalars(
            select(Delivery.id).where(Delivery.organisation_id == organisation_id)
        ).all()
    assert notifications and deliveries
    return Tenant(
        world,
        create_key(organisation_id, "isolation").key,
        [str(item) for item in notifications],
        [str(item) for item in deliveries],
    )


@pytest.fixture
def tenants(
    fake_provider: FakeProviderServer, settings_env: Callable[..., None], worker: str
) -> Iterator[tuple[Tenant, Tenant, TestClient]]:
    # Thousands of calls with one key: its rate limit is not what this test is about.
    settings_env(api_rate_limit_per_second=1_000_000, api_rate_limit_burst=1_000_000)
    a = tenant(build_world(create_organisation(NAMES.organisation), NAMES, fake_provider,
                           b_only=False))  # fmt: skip
    b = tenant(build_world(create_organisation(NAMES.organisation), NAMES, fake_provider,
                           b_only=True))  # fmt: skip
    with api_client() as client:
        # An action of B's, done (by the worker) before anything is compared: its result is
        # stored under B's task id.
        done = client.post(
            "/v1/actions/list_inbox",
            headers=b.headers,
            params={"wait": 30},
            json={"subscriber_id": b.world.s("subscribers")},
        )
        assert done.status_code == 200, done.text
        assert done.json()["data"]["result"]["ok"], done.text
        b.task_id = done.json()["data"]["taskId"]
        assert b.task_id.startswith(str(b.organisation_id))
        assert client.get(f"/v1/actions/{b.task_id}", headers=b.headers).status_code == 200
        yield a, b, client
    api_rate_store.cache_clear()


# --- calls and their comparison -----------------------------------------------------------


def filled(value: Any, a: Tenant, order: Iterator[str]) -> Any:
    """``value`` with each :class:`Slot` taken from ``order`` (in :meth:`Attack.slots` order)."""
    if isinstance(value, Slot):
        return next(order)
    if isinstance(value, Own):
        return value.value(a)
    if isinstance(value, dict):
        return {name: filled(item, a, order) for name, item in value.items()}
    if isinstance(value, list):
        return [filled(item, a, order) for item in value]
    return value


@dataclass(frozen=True)
class Answer:
    status: int
    #: The body without ``timestamp`` and ``path``, the ids sent replaced (:func:`without_values`).
    body: Any
    text: str


def call(client: TestClient, a: Tenant, attack: Attack, values: list[str]) -> Answer:
    """The answer to ``attack`` with A's key, its slots filled by ``values`` in order."""
    order = iter(values)
    params = {name: filled(fill, a, order) for name, fill in attack.params.items()}
    body = filled(attack.body, a, order)
    path = attack.route.format(**params)
    answer = client.request(attack.method, path, headers=a.headers, json=body, params=attack.query)
    parsed: Any = answer.json() if answer.content else None
    if isinstance(parsed, dict):
        parsed.pop("timestamp", None)
        parsed.pop("path", None)
        if isinstance(parsed.get("data"), dict):
            parsed["data"].pop("taskId", None)  # a new task's own id
    return Answer(answer.status_code, without_values(parsed, values), answer.text)


def without_values(value: Any, values: list[str]) -> Any:
    """``value`` with each of ``values`` replaced by ``<slot n>``: a whole string, a quoted
    name in a message (``subscriber 'cy' not found``), or anywhere in a string when as long
    as a row id (a random key of one letter must not hit the message's letters)."""
    if isinstance(value, dict):
        return {key: without_values(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [without_values(item, values) for item in value]
    if not isinstance(value, str):
        return value
    for position, sent in sorted(enumerate(values), key=lambda item: -len(item[1])):
        slot = f"<slot {position}>"
        if value == sent:
            return slot
        value = value.replace(f"'{sent}'", f"'{slot}'")
        if len(sent) >= len(str(uuid.UUID(int=0))):
            value = value.replace(sent, slot)
    return value


def row_ids(organisation_id: uuid.UUID) -> set[str]:
    """The organisation's id and the id of every row of it."""
    ids = {str(organisation_id)}
    for rows in snapshot(organisation_id).values():
        ids.update(str(row[0]) for row in rows if isinstance(row[0], uuid.UUID))
    return ids


def without_key_use(taken: dict[str, Any]) -> dict[str, Any]:
    """A snapshot but for the API keys (a key's last use is recorded) and the action ledger
    (each action A runs records its result)."""
    skipped = {ApiKey.__tablename__, ActionRun.__tablename__}
    return {table: rows for table, rows in taken.items() if table not in skipped}


def assert_like_missing(client: TestClient, a: Tenant, attack: Attack, values: list[str]) -> Answer:
    """The call with ``values`` (B's ids, or ids of no one) answers as the call with missing
    ids of the same forms instead."""
    attacked = call(client, a, attack, values)
    reference = call(client, a, attack, [missing_like(value) for value in values])
    label = (attack.method, attack.route, values)
    assert attacked.status == reference.status, (label, attacked.text, reference.text)
    assert attacked.body == reference.body, (label, attacked.text, reference.text)
    assert attacked.status < 500, (label, attacked.text)
    return attacked


def b_path_asked(fake: FakeProviderServer, b: Tenant) -> bool:
    return any(b.world.path in request.path for request in fake.state.requests)


def test_a_s_key_on_b_s_ids_answers_as_a_missing_id_and_changes_nothing(
    tenants: tuple[Tenant, Tenant, TestClient], fake_provider: FakeProviderServer
) -> None:
    a, b, client = tenants
    foreign_ids = {kind: ids(b) for kind, ids in FOREIGN.items()}
    b_ids = row_ids(b.organisation_id)
    before_b, before_a = snapshot(b.organisation_id), without_key_use(snapshot(a.organisation_id))
    statuses: dict[int, int] = {}

    def check(attack: Attack, values: list[str]) -> None:
        answer = assert_like_missing(client, a, attack, values)
        statuses[answer.status] = statuses.get(answer.status, 0) + 1
        sent = " ".join(values)  # a task id sent holds B's organisation id, echoed in `path`
        leaked = {item for item in b_ids if item in answer.text and item not in sent}
        assert not leaked, (attack.route, values, leaked, answer.text)

    # Every attack once with each combination of B's ids...
    for attack in ATTACKS:
        for values in itertools.product(*(foreign_ids[s.kind] for s in attack.slots())):
            check(attack, list(values))

    # ... then hypothesis mixes B's ids with random ones, route by route.
    @settings(
        max_examples=300, deadline=None, derandomize=True, database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )  # fmt: skip
    @given(data=st.data())
    def mixed(data: st.DataObject) -> None:
        attack = data.draw(st.sampled_from(ATTACKS), label="attack")
        values = [
            data.draw(
                st.sampled_from(foreign_ids[slot.kind])
                | st.sampled_from(foreign_ids[slot.kind]).flatmap(random_like),
                label=slot.kind,
            )
            for slot in attack.slots()
        ]
        check(attack, values)

    mixed()
    assert statuses.get(404, 0) > len(ATTACKS), statuses  # most attacks are plain 404s
    assert snapshot(b.organisation_id) == before_b
    assert without_key_use(snapshot(a.organisation_id)) == before_a
    assert not b_path_asked(fake_provider, b)


def data_of(answer: Any) -> list[Any]:
    body = answer.json()
    return list(body["data"])


def test_lists_with_a_s_key_hold_none_of_b_s_rows_and_filters_by_b_s_ids_find_nothing(
    tenants: tuple[Tenant, Tenant, TestClient],
) -> None:
    a, b, client = tenants
    b_ids = row_ids(b.organisation_id)
    b_names = b.world.names

    def listed(path: str, **query: Any) -> list[Any]:
        answer = client.get(path, headers=a.headers, params=query)
        assert answer.status_code == 200, (path, query, answer.text)
        leaked = {item for item in b_ids if item in answer.text}
        assert not leaked, (path, query, leaked)
        return data_of(answer)

    # Unfiltered, each list holds A's own rows (so the checks below could find B's).
    lists = {route for method, route in LISTS}
    for path in lists:
        assert listed(path, limit=100), path
    own_subscriber = listed("/v2/topics/team/subscriptions")
    assert [item["subscriber"]["subscriberId"] for item in own_subscriber] == ["ada"]

    a_transaction = a.world.transaction_id
    filters: list[tuple[str, str, str, str]] = [
        # (path, filter, B's value, A's value of the same kind)
        ("/v1/notifications", "transactionId", b.world.transaction_id, a_transaction),
        ("/v1/notifications", "subscriberId", b_names.subscriber_b_only, "ada"),
        ("/v1/notifications", "subscriberIds", b.world.s("subscribers"), "ada"),
        ("/v1/notifications", "templates", b.world.s("workflows"), a.world.s("workflows")),
        ("/v1/notifications", "workflow", b_names.workflow_b_only, b_names.workflow),
        ("/v1/messages", "transactionId", b.world.transaction_id, a_transaction),
        ("/v1/messages", "subscriberId", b_names.subscriber_b_only, "ada"),
        ("/v2/subscribers", "subscriberId", b_names.subscriber_b_only, "ada"),
        ("/v1/workflows", "key", b_names.workflow_b_only, b_names.workflow),
    ]
    for path, name, foreign, own in filters:
        assert listed(path, **{name: foreign}) == [], (path, name)
        assert listed(path, **{name: own}), (path, name)
    # A cursor of B's row: A's rows before it, never B's (the walk above checks every text).
    cursor_of_b = client.get("/v2/subscribers", headers=b.headers, params={"limit": 1}).json()
    assert cursor_of_b["next"], cursor_of_b
    assert listed("/v2/subscribers", after=cursor_of_b["next"])


def test_creates_with_b_s_keys_and_idempotency_keys_make_rows_of_a_s_own(
    tenants: tuple[Tenant, Tenant, TestClient], fake_provider: FakeProviderServer
) -> None:
    a, b, client = tenants
    # B's answers stored under idempotency keys A then sends too.
    replayed = {"Idempotency-Key": "shared-key-1"}
    b_subscriber = client.post("/v2/subscribers", headers={**b.headers, **replayed},
                               json={"subscriberId": "idem"})  # fmt: skip
    assert b_subscriber.status_code == 201, b_subscriber.text
    triggered = {"Idempotency-Key": "shared-key-2"}
    event = {"name": b.world.names.workflow, "to": "ada", "payload": {"code": "i"}}
    b_trigger = client.post("/v1/events/trigger", headers={**b.headers, **triggered}, json=event)
    assert b_trigger.status_code == 201, b_trigger.text
    before_b = snapshot(b.organisation_id)

    a_subscriber = client.post("/v2/subscribers", headers={**a.headers, **replayed},
                               json={"subscriberId": "idem"})  # fmt: skip
    assert a_subscriber.status_code == 201, a_subscriber.text
    assert a_subscriber.json()["data"]["_organizationId"] == str(a.organisation_id)
    # The same derived transaction id, but A's own: written in A, no duplicate of B's.
    a_trigger = client.post("/v1/events/trigger", headers={**a.headers, **triggered}, json=event)
    assert a_trigger.status_code == 201, a_trigger.text
    transaction = a_trigger.json()["data"]["transactionId"]
    assert transaction == b_trigger.json()["data"]["transactionId"]
    activity = client.get("/v1/notifications", headers=a.headers,
                          params={"transactionId": transaction}).json()["data"]  # fmt: skip
    assert [item["_organizationId"] for item in activity] == [str(a.organisation_id)]
    names = b.world.names
    created = client.post(
        "/v2/subscribers", headers=a.headers, json={"subscriberId": names.subscriber_b_only}
    )
    assert created.status_code == 201, created.text
    assert created.json()["data"]["_organizationId"] == str(a.organisation_id)
    topic = client.post("/v2/topics", headers=a.headers, json={"key": names.topic_b_only})
    assert topic.status_code == 201, topic.text
    assert topic.json()["data"]["_id"] != b.world.s("topics")
    subscribed = client.post(
        f"/v2/topics/{names.topic_b_only}/subscriptions",
        headers=a.headers,
        json={"subscriberIds": [names.subscriber_b_only]},
    )
    assert subscribed.json()["meta"]["successful"] == 1, subscribed.text
    b_ids = row_ids(b.organisation_id)
    for answer in (created, topic, subscribed):
        assert not {item for item in b_ids if item in answer.text}, answer.text
    # A's new topic and subscriber under B's keys still do not make B's workflow A's.
    to_topic = {"type": "Topic", "topicKey": names.topic_b_only}
    refused = client.post(
        "/v1/events/trigger",
        headers=a.headers,
        json={"name": names.workflow_b_only, "to": to_topic},
    )
    assert refused.status_code == 400, refused.text
    flow = client.post("/v1/workflows", headers=a.headers, json={
        "key": names.workflow_b_only, "name": "A's", "steps": [{"kind": "sms",
                                                               "template": {"body": "a"}}]})  # fmt: skip
    assert flow.status_code == 201 and flow.json()["data"]["_id"] != b.world.s("workflows")
    assert snapshot(b.organisation_id) == before_b
    assert not b_path_asked(fake_provider, b)
