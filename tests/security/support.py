"""Helpers for the security tests: two colliding organisations, row snapshots, in-process
sending of parked deliveries, and a scripted loopback HTTP server."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy import insert, select

from dispatcher import trigger
from dispatcher.config import Settings
from dispatcher.dev.fakeserver import FakeProviderServer
from dispatcher.runtime.resources import database
from dispatcher.sending.batch import process_batch
from dispatcher.sending.store import BatchReport
from models import (
    Base,
    ChannelType,
    Delivery,
    DeliveryStatus,
    InboxMessage,
    Notification,
    Organisation,
    Suppression,
    WebhookEndpoint,
)
from models.types import utcnow
from tests.dispatcher.notify_support import act

#: A delay this long parks a trigger's deliveries: nothing publishes or sweeps them during a
#: test, so the test alone decides when (and in which process) they are sent.
PARK_SECONDS = 3600


def parked(*steps: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"kind": "delay", "config": {"seconds": PARK_SECONDS}}, *steps]


def email_step(body: str = "Code {{ payload.code | default('-') }}") -> dict[str, Any]:
    return {"kind": "email", "template": {"subject": "Hello", "body": body}}


# --- in-process sending -----------------------------------------------------------------------


def sending_settings(**overrides: Any) -> Settings:
    """Settings under which this process may claim parked deliveries at once, and a retry is
    due immediately (no countdown, no wait)."""
    values: dict[str, Any] = {
        "enqueue_lease": 2 * PARK_SECONDS,
        "send_lease": 2 * PARK_SECONDS,
        "retry_base_delay": 0.0,
        "retry_max_delay": 0.0,
    }
    return Settings(**{**values, **overrides})


def open_deliveries(organisation_id: uuid.UUID, transaction_id: str | None = None) -> list[str]:
    with database().session() as session:
        query = select(Delivery.id).where(
            Delivery.organisation_id == organisation_id,
            Delivery.status.in_([DeliveryStatus.QUEUED, DeliveryStatus.RETRYING]),
        )
        if transaction_id is not None:
            query = query.join(Notification, Notification.id == Delivery.notification_id).where(
                Notification.transaction_id == transaction_id
            )
        return [str(item) for item in session.scalars(query)]


def send_parked(
    organisation_id: uuid.UUID,
    transaction_id: str | None = None,
    *,
    rounds: int = 20,
    **overrides: Any,
) -> list[BatchReport]:
    """Send an organisation's parked deliveries in this process until none is left open."""
    settings = sending_settings(**overrides)
    reports = []
    for _ in range(rounds):
        ids = open_deliveries(organisation_id, transaction_id)
        if not ids:
            return reports
        reports.append(process_batch(ids, settings))
    raise AssertionError(f"deliveries still open after {rounds} rounds")


# --- two organisations with colliding names ---------------------------------------------------


@dataclass(frozen=True)
class Names:
    """Names both organisations use, and names only the second one has."""

    organisation: str
    subscribers: tuple[str, ...]
    topic: str
    workflow: str
    subscriber_b_only: str
    topic_b_only: str
    workflow_b_only: str


@dataclass
class World:
    organisation_id: uuid.UUID
    names: Names
    path: str
    #: Row ids by table name (``users``, ``tools``, ...); ``users2`` is a second user.
    ids: dict[str, uuid.UUID] = field(default_factory=dict)
    transaction_id: str = ""

    def s(self, table: str) -> str:
        return str(self.ids[table])


def build_world(
    organisation_id: uuid.UUID, names: Names, fake: FakeProviderServer, *, b_only: bool
) -> World:
    """Every kind of row an action can reference, under the shared names."""
    world = World(organisation_id, names, f"{organisation_id.hex[:12]}-tenancy")
    fake.configure(world.path)
    ids = world.ids

    def make(table: str, action: str, arguments: dict[str, Any]) -> None:
        ids[table] = act(organisation_id, action, arguments)

    make("users", "create_user", {"name": names.organisation, "email": "ada@example.com"})
    make("users2", "create_user", {"name": names.organisation, "email": "bo@example.com"})
    make("groups", "create_group", {"name": names.organisation})
    for position, external_id in enumerate(names.subscribers):
        table = "subscribers" if position == 0 else f"subscribers{position + 1}"
        make(table, "create_subscriber", {"external_id": external_id, "email": f"s{position}@example.com"})  # fmt: skip
    make("topics", "create_topic", {"key": names.topic, "name": names.organisation,
                                     "subscriber_ids": [world.s("subscribers")]})  # fmt: skip
    make("workflows", "create_workflow", {"key": names.workflow, "name": names.organisation,
                                          "steps": parked(email_step())})  # fmt: skip
    make("integrations", "create_integration", {
        "name": names.organisation, "provider": "fake_http", "channel_type": "email",
        "credentials": {"api_key": f"SECRET-{organisation_id.hex}"},
        "settings": {"url": f"{fake.url}/{world.path}"}, "is_primary": True})  # fmt: skip
    make("tools", "create_tool", {"name": names.organisation, "action": "sendEmail",
                                  "integration_id": world.s("integrations")})  # fmt: skip
    make("prompts", "create_prompt", {"name": names.organisation, "content": "Be kind."})
    make("agents", "create_agent", {"name": names.organisation, "description": "helps",
                                     "kind": "user_agent", "tools": [world.s("tools")]})  # fmt: skip
    make("agent_threads", "create_agent_thread", {"title": names.organisation,
                                                  "agent_id": world.s("agents")})  # fmt: skip
    make("agent_messages", "send_agent_message", {"thread_id": world.s("agent_threads"),
                                                  "kind": "user", "content": "hello"})  # fmt: skip
    make("flows", "create_flow", {"name": names.organisation, "steps": ["one", "two"]})
    make("courses", "create_course", {"name": names.organisation, "flow_id": world.s("flows")})
    make("lessons", "assign_lesson", {"flow_id": world.s("flows"), "user_id": world.s("users")})
    make("flow_progress", "update_flow_progress", {"flow_id": world.s("flows"), "step_name": "one",
                                                   "status": "In Progress"})  # fmt: skip
    make("memberships", "add_group_member", {"group_id": world.s("groups"),
                                             "user_id": world.s("users")})  # fmt: skip
    make("grants", "grant_access", {"resource_type": "tool", "resource_id": world.s("tools"),
                                    "grantee_type": "user", "grantee_id": world.s("users")})  # fmt: skip
    make("preferences", "set_preference", {"subscriber_id": world.s("subscribers"),
                                           "channel_type": "sms", "enabled": False})  # fmt: skip
    make("schedules", "create_schedule", {"workflow": names.workflow, "cron": "0 0 29 2 *",
                                          "to": [names.subscribers[0]]})  # fmt: skip
    with database().transaction() as session:
        ids["inbox_messages"] = uuid.uuid4()
        session.execute(insert(InboxMessage).values(
            id=ids["inbox_messages"], organisation_id=organisation_id,
            subscriber_id=ids["subscribers"], title=names.organisation, body="inbox",
            data={}, meta={}, created_at=utcnow(), updated_at=utcnow()))  # fmt: skip
        ids["suppressions"] = uuid.uuid4()
        session.execute(insert(Suppression).values(
            id=ids["suppressions"], organisation_id=organisation_id,
            channel_type=ChannelType.SMS, address="+15550100", reason="complained", meta={},
            created_at=utcnow()))  # fmt: skip
        ids["webhook_endpoints"] = uuid.uuid4()
        session.execute(insert(WebhookEndpoint).values(
            id=ids["webhook_endpoints"], organisation_id=organisation_id,
            url="http://127.0.0.1:9/hooks", event_types=["message.read"],
            secret={"signing_secret": f"SECRET-{organisation_id.hex}"}, enabled=True, meta={},
            created_at=utcnow(), updated_at=utcnow()))  # fmt: skip
    world.transaction_id = f"tx-{organisation_id.hex}"
    trigger(organisation_id, names.workflow, list(names.subscribers), {"code": "1"},
            transaction_id=world.transaction_id)  # fmt: skip
    if b_only:
        act(organisation_id, "create_subscriber", {"external_id": names.subscriber_b_only})
        act(organisation_id, "create_topic", {"key": names.topic_b_only, "name": "b"})
        act(organisation_id, "create_workflow", {"key": names.workflow_b_only, "name": "b",
                                                 "steps": parked(email_step())})  # fmt: skip
    return world


Snapshot = dict[str, list[tuple[Any, ...]]]


def snapshot(organisation_id: uuid.UUID) -> Snapshot:
    """Every row of the organisation, table by table (credentials decrypted)."""
    taken: Snapshot = {}
    with database().session() as session:
        for table in Base.metadata.sorted_tables:
            if table.name == Organisation.__tablename__:
                query = select(table).where(table.c.id == organisation_id)
            elif "organisation_id" in table.c:
                query = select(table).where(table.c.organisation_id == organisation_id)
            else:
                continue
            rows = session.execute(query.order_by(table.c.id)).all()
            taken[table.name] = [tuple(row) for row in rows]
    return taken


def table_of(row_id: uuid.UUID) -> tuple[str, uuid.UUID] | None:
    """The table holding ``row_id`` and its organisation, if any table does."""
    with database().session() as session:
        for table in Base.metadata.sorted_tables:
            if "organisation_id" not in table.c:
                continue
            owner = session.scalar(select(table.c.organisation_id).where(table.c.id == row_id))
            if owner is not None:
                return table.name, owner
    return None


# --- a scripted loopback HTTP server --------------------------------------------------------


@dataclass
class Route:
    status: int = 200
    #: The answer's body, or a function of the request (method, path, headers, body).
    body: str | Callable[[str, str, dict[str, str], str], str] = '{"id": "m-1"}'
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: str


def echo(method: str, path: str, headers: dict[str, str], body: str) -> str:
    """An error answer that repeats the request's credentials and body, as careless APIs do
    (``invalid API key: <key>``)."""
    credential = headers.get("authorization") or headers.get("x-postmark-server-token")
    return json.dumps({"error": f"invalid credentials: {credential}", "request": body[:200]})


class ScriptedServer:
    """Answers each path prefix by its :class:`Route` and records every request; loopback only
    (``host`` may name another loopback address, one outside the allow-list)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
                headers = dict(self.headers.items())
                server.seen.append(Seen(self.command, self.path, headers, body))
                route = next(
                    (r for prefix, r in sorted(server.routes.items(), key=lambda i: -len(i[0]))
                     if self.path.startswith(prefix)), Route(404, '{"error": "no route"}'),
                )  # fmt: skip
                text = (
                    route.body(self.command, self.path, headers, body)
                    if callable(route.body)
                    else route.body
                )
                payload = text.encode("utf-8")
                self.send_response(route.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in route.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = _answer  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, prefix: str, route: Route) -> str:
        self.routes[prefix] = route
        return f"{self.url}{prefix}"

    @contextmanager
    def running(self) -> Iterator[ScriptedServer]:
        self._thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()


# --- valid arguments for every action --------------------------------------------------------

Builder = Callable[[World], dict[str, Any]]

#: Valid arguments in the world's own organisation for every action; the attacks below replace
#: one referenced id at a time with the other organisation's.
BASE_ARGUMENTS: dict[str, Builder] = {
    "create_user": lambda w: {"name": "Cy", "email": f"{uuid.uuid4().hex[:8]}@example.com"},
    "create_group": lambda w: {"name": uuid.uuid4().hex},
    "add_group_member": lambda w: {"group_id": w.s("groups"), "user_id": w.s("users2")},
    "create_agent": lambda w: {
        "name": "Agent", "description": "d", "kind": "system_agent", "created_by": w.s("users"),
        "delegates_to": [w.s("agents")], "tools": [w.s("tools")],
        "attached_prompts": [w.s("prompts")],
    },
    "send_agent_message": lambda w: {"thread_id": w.s("agent_threads"), "author_id": w.s("users"),
                                     "kind": "user", "content": "hi"},
    "create_agent_thread": lambda w: {"title": "t", "agent_id": w.s("agents"),
                                      "created_by": w.s("users")},
    "create_tool": lambda w: {"name": "t", "action": "sendEmail",
                              "integration_id": w.s("integrations"), "created_by": w.s("users")},
    "create_prompt": lambda w: {"name": "p", "content": "c", "created_by": w.s("users")},
    "create_flow": lambda w: {"name": "f"},
    "create_course": lambda w: {"name": "c", "flow_id": w.s("flows")},
    "assign_lesson": lambda w: {
        "flow_id": w.s("flows"), "course_id": w.s("courses"), "step_name": "one",
        "user_id": w.s("users"), "agent_id": w.s("agents"), "assigned_by": w.s("users2"),
    },
    "update_flow_progress": lambda w: {"flow_id": w.s("flows"), "step_name": "two",
                                       "user_id": w.s("users"), "agent_id": w.s("agents"),
                                       "status": "Completed"},
    "create_subscriber": lambda w: {"external_id": uuid.uuid4().hex, "user_id": w.s("users")},
    "create_topic": lambda w: {"key": uuid.uuid4().hex, "name": "t",
                               "subscriber_ids": [w.s("subscribers"), w.s("subscribers2")]},
    "subscribe_to_topic": lambda w: {"topic_id": w.s("topics"),
                                     "subscriber_ids": [w.s("subscribers2"), w.s("subscribers")]},
    "set_preference": lambda w: {"subscriber_id": w.s("subscribers"),
                                 "workflow_id": w.s("workflows"), "enabled": False},
    "create_workflow": lambda w: {"key": uuid.uuid4().hex, "name": "w", "steps": [email_step()]},
    "update_workflow": lambda w: {"key": w.names.workflow, "steps": [email_step()]},
    "delete_workflow": lambda w: {"key": w.names.workflow},
    "create_layout": lambda w: {"key": uuid.uuid4().hex, "name": "l", "html": "<i>{{ body }}</i>"},
    "create_integration": lambda w: {
        "name": "i", "provider": "fake_http", "channel_type": "sms", "created_by": w.s("users"),
        "credentials": {"api_key": "k-123456"}, "settings": {"url": "http://127.0.0.1:9/x"},
    },
    "update_integration": lambda w: {"integration_id": w.s("integrations"), "name": "renamed"},
    "deactivate_integration": lambda w: {"integration_id": w.s("integrations")},
    "set_primary_integration": lambda w: {"integration_id": w.s("integrations")},
    "grant_access": lambda w: {"resource_type": "tool", "resource_id": w.s("tools"),
                               "grantee_type": "agent", "grantee_id": w.s("agents"),
                               "granted_by": w.s("users")},
    "revoke_access": lambda w: {"grant_id": w.s("grants")},
    "list_inbox": lambda w: {"subscriber_id": w.s("subscribers"), "before": w.s("inbox_messages")},
    "mark_inbox": lambda w: {"subscriber_id": w.s("subscribers"),
                             "message_ids": [w.s("inbox_messages")], "as": "read"},
    "invoke_tool": lambda w: {"tool_id": w.s("tools"), "invoked_by_user": w.s("users"),
                              "to": [w.names.subscribers[0]], "body": "hi"},
    "create_schedule": lambda w: {"workflow": w.names.workflow, "cron": "0 0 29 2 *",
                                  "to": [w.names.subscribers[0]]},
    "deactivate_schedule": lambda w: {"schedule_id": w.s("schedules")},
}  # fmt: skip
