"""Secrets: credentials of real providers, pointed at a loopback server that fails some sends and
repeats the request (auth headers included) in its error answers, never show up in a log record,
a stored attempt, a delivery's last error, a task's published arguments or stored result, or the
output of ``dispatcher status`` and ``dispatcher integrations list``."""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from celery.signals import before_task_publish
from click.testing import CliRunner
from sqlalchemy import select

from dispatcher import Err, enqueue_action, trigger
from dispatcher.celery_app import app
from dispatcher.cli.main import main as cli
from dispatcher.organisations import create_organisation
from dispatcher.runtime.resources import database
from models import Delivery, DeliveryAttempt
from tests.dispatcher.notify_support import act, wait_until_terminal
from tests.security.support import (
    Route,
    ScriptedServer,
    echo,
    parked,
    send_parked,
)

pytestmark = pytest.mark.usefixtures("postgres_url", "redis_url")

#: Headers that carry a credential in the requests of the providers used here.
AUTH_HEADERS = {"authorization", "x-postmark-server-token"}


@dataclass
class Tenant:
    organisation_id: uuid.UUID
    secrets: list[str]
    server: ScriptedServer
    integrations: dict[str, uuid.UUID] = field(default_factory=dict)

    def forms(self) -> set[str]:
        """Each secret as typed, and every credential-bearing header the server received."""
        found = set(self.secrets)
        for seen in self.server.seen:
            for name, value in seen.headers.items():
                if name.lower() in AUTH_HEADERS or any(secret in value for secret in self.secrets):
                    found.add(value)
                    found.add(value.split(" ", 1)[-1])  # the token after "Bearer"/"Basic"
        return found

    def leaks(self, texts: Iterable[Any]) -> list[str]:
        forms = self.forms()
        return [str(text)[:200] for text in texts if any(form in str(text) for form in forms)]


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer().running() as running:
        yield running


def connect(server: ScriptedServer, prefix: str) -> Tenant:
    """An organisation with real providers on the scripted server: some fail and echo the
    request, one per channel succeeds after them."""
    org = create_organisation("Secrets")
    tag = uuid.uuid4().hex
    secrets = {name: f"{name.upper()}-SECRET-{tag}" for name in
               ("sendgrid", "postmark", "mailgun", "resend", "messagebird", "plivo", "webhook")}  # fmt: skip
    tenant = Tenant(org, list(secrets.values()), server)
    sender = {"from_email": "noreply@example.com"}
    plan: list[tuple[str, str, dict[str, Any], dict[str, Any], Route]] = [
        ("sendgrid", "email", {"api_key": secrets["sendgrid"]}, sender, Route(401, echo)),
        ("postmark", "email", {"server_token": secrets["postmark"]}, sender, Route(500, echo)),
        ("mailgun", "email", {"api_key": secrets["mailgun"]}, {**sender, "domain": "mg.example.com"},
         Route(403, echo)),
        ("resend", "email", {"api_key": secrets["resend"]}, sender, Route(200, '{"id": "re-1"}')),
        ("messagebird", "sms", {"access_key": secrets["messagebird"]}, {"originator": "Acme"},
         Route(401, echo)),
        ("plivo", "sms", {"auth_id": "MA123", "auth_token": secrets["plivo"]}, {"src": "+15550001"},
         Route(202, '{"message_uuid": ["p-1"], "api_id": "a"}')),
    ]  # fmt: skip
    for position, (provider, channel, credentials, settings, route) in enumerate(plan):
        base = server.route(f"/{prefix}/{provider}", route)
        tenant.integrations[provider] = act(org, "create_integration", {
            "name": provider, "provider": provider, "channel_type": channel,
            "credentials": credentials, "settings": {**settings, "base_url": base},
            "priority": position, "is_primary": position in (0, 4)})  # fmt: skip
    tenant.integrations["webhook"] = act(org, "create_integration", {
        "name": "webhook", "provider": "webhook", "channel_type": "webhook",
        "credentials": {"signing_secret": secrets["webhook"]}})  # fmt: skip
    hook = server.route(f"/{prefix}/hook", Route(500, echo))
    act(org, "create_subscriber", {"external_id": "ada", "email": "ada@example.com",
                                   "phone": "+447700900001", "channels": {"webhook": {"url": hook}}})  # fmt: skip
    return tenant


STEPS = [
    {"kind": "email", "template": {"subject": "Hi", "body": "Code {{ payload.code }}"}},
    {"kind": "sms", "template": {"body": "Code {{ payload.code }}"}},
    {"kind": "webhook", "template": {"body": "Code {{ payload.code }}"}},
]


def stored_texts(organisation_id: uuid.UUID) -> list[Any]:
    """Every stored attempt and delivery of the organisation, column by column."""
    texts: list[Any] = []
    with database().session() as session:
        for model in (DeliveryAttempt, Delivery):
            for row in session.execute(
                select(model.__table__).where(model.__table__.c.organisation_id == organisation_id)
            ):
                texts.extend(json.dumps(value, default=str) for value in row)
    return texts


def sent_in_process(server: ScriptedServer) -> Tenant:
    tenant = connect(server, "in-process")
    act(
        tenant.organisation_id,
        "create_workflow",
        {"key": "w", "name": "w", "steps": parked(*STEPS)},
    )
    trigger(tenant.organisation_id, "w", "ada", {"code": "1234"}, transaction_id="tx-secrets")
    send_parked(tenant.organisation_id)
    return tenant


def test_the_sends_fell_back_through_the_failing_providers(server: ScriptedServer) -> None:
    tenant = sent_in_process(server)
    views = {view.channel: view for view in _views(tenant)}
    assert (views["email"].status, views["email"].provider) == ("sent", "resend")
    assert (views["sms"].status, views["sms"].provider) == ("sent", "plivo")
    assert views["webhook"].status == "failed"
    # The server did see the credentials, so the checks below look for something real.
    assert any(form.startswith("Bearer ") for form in tenant.forms())
    echoed = [seen for seen in server.seen if "/sendgrid" in seen.path]
    assert echoed and tenant.secrets[0] in echoed[0].headers["authorization"]


def _views(tenant: Tenant) -> list[Any]:
    from dispatcher.notifications.status import transaction_status

    return transaction_status(tenant.organisation_id, "tx-secrets")


def test_no_secret_in_any_log_record(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tenant = sent_in_process(server)
    records = [record.getMessage() for record in caplog.records]
    records += [record.exc_text or "" for record in caplog.records]
    assert len(records) > 10  # DEBUG records of the sends were captured
    assert not tenant.leaks(records)


def test_no_secret_in_stored_attempts_or_last_errors(server: ScriptedServer) -> None:
    tenant = sent_in_process(server)
    assert not tenant.leaks(stored_texts(tenant.organisation_id))
    assert not tenant.leaks(view.last_error for view in _views(tenant))


def test_no_secret_in_the_cli_output(server: ScriptedServer) -> None:
    tenant = sent_in_process(server)
    runner = CliRunner()
    org = str(tenant.organisation_id)
    for arguments in (
        ["status", "tx-secrets", "--org", org],
        ["integrations", "list", "--org", org],
    ):
        outcome = runner.invoke(cli, arguments)
        assert outcome.exit_code == 0, outcome.output
        assert not tenant.leaks([outcome.output]), arguments
    assert "resend" in runner.invoke(cli, ["status", "tx-secrets", "--org", org]).output


@pytest.fixture
def published() -> Iterator[list[str]]:
    """The body and headers of every task message this process publishes, as JSON text."""
    captured: list[str] = []

    def capture(body: Any = None, headers: Any = None, **_: Any) -> None:
        captured.append(json.dumps({"body": body, "headers": headers}, default=str))

    before_task_publish.connect(capture, weak=False)
    yield captured
    before_task_publish.disconnect(capture)


@pytest.mark.usefixtures("worker")
def test_no_secret_in_published_task_arguments_task_results_or_the_worker_log(
    server: ScriptedServer, published: list[str]
) -> None:
    tenant = connect(server, "worker")
    org = tenant.organisation_id
    fresh = f"ROTATED-SECRET-{uuid.uuid4().hex}"
    tenant.secrets.append(fresh)
    handles = [
        enqueue_action("update_integration", {"integration_id": str(tenant.integrations["resend"]),
                                              "credentials": {"api_key": fresh}},
                       organisation_id=org),
        # Refused by the worker (the credentials do not fit the provider): the Err names fields.
        enqueue_action("update_integration", {"integration_id": str(tenant.integrations["resend"]),
                                              "credentials": {"api_key": fresh, "token": fresh}},
                       organisation_id=org),
        enqueue_action("create_integration", {"name": "more", "provider": "sendgrid",
                                              "credentials": {"api_key": fresh},
                                              "settings": {"from_email": "a@example.com"}},
                       organisation_id=org),
    ]  # fmt: skip
    results = [handle.get(timeout=30) for handle in handles]
    assert isinstance(results[1], Err), results
    assert not isinstance(results[0], Err) and not isinstance(results[2], Err), results

    act(org, "create_workflow", {"key": "now", "name": "now", "steps": STEPS})
    receipt = trigger(org, "now", "ada", {"code": "99"})
    views = wait_until_terminal(org, receipt.transaction_id)
    assert {view.channel: view.status for view in views} == {
        "email": "sent", "sms": "sent", "webhook": "failed"}  # fmt: skip

    assert len(published) >= 4
    assert not tenant.leaks(published)
    raw_results = [
        app.backend.client.get(app.backend.get_key_for_task(handle.id)) for handle in handles
    ]
    assert all(raw_results)
    assert not tenant.leaks(raw.decode("utf-8", "replace") for raw in raw_results)
    assert fresh not in str(results)
    worker_log = Path(os.environ["DISPATCHER_DATA_DIR"]) / "worker.log"
    assert not tenant.leaks(worker_log.read_text(errors="replace").splitlines())
