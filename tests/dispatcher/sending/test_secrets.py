"""No object of the send path shows a decrypted credential: candidates, jobs, the prepared
integration, outcomes, attempts, batch reports and the errors raised on the way, in their
repr, their str and the log records that print them; nor do a real batch's log records and
stored attempts."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from dispatcher import trigger
from dispatcher.config import get_settings
from dispatcher.runtime.resources import database
from dispatcher.runtime.url_guard import DestinationGuard
from dispatcher.sending.batch import sending_runtime
from dispatcher.sending.integrations import Candidate, load_candidate, prepare
from dispatcher.sending.store import BatchReport
from models import DeliveryAttempt
from providers.errors import IntegrationError
from providers.fake import FakeCredentials
from tests.security.support import Route, ScriptedServer, act, echo, email_step, parked, send_parked

pytestmark = pytest.mark.usefixtures("postgres_url", "redis_url")

logger = logging.getLogger("tests.send_path")


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer().running() as running:
        yield running


@pytest.fixture
def secret() -> str:
    return f"SECRET-send-path-{uuid.uuid4().hex}"


def integration(
    organisation_id: uuid.UUID, name: str, secret: str, url: str, position: int
) -> uuid.UUID:
    return act(organisation_id, "create_integration", {
        "name": name, "provider": "fake_http", "credentials": {"api_key": f"{secret}-{name}"},
        "settings": {"url": url}, "priority": position, "is_primary": position == 0,
    })  # fmt: skip


def sent(server: ScriptedServer, organisation_id: uuid.UUID, secret: str) -> list[BatchReport]:
    """One email through three integrations: one echoing the request's credentials in its
    500 answers, one pointing at a loopback address outside the allow-list, one that sends."""
    integration(organisation_id, "echo", secret, server.route("/echo", Route(500, echo)), 0)
    integration(organisation_id, "refused", secret, "http://127.0.0.2:9/x", 1)
    integration(organisation_id, "ok", secret, server.route("/ok", Route(200, '{"id": "m"}')), 2)
    act(organisation_id, "create_subscriber", {"external_id": "ada", "email": "ada@example.com"})
    act(
        organisation_id, "create_workflow", {"key": "w", "name": "w", "steps": parked(email_step())}
    )
    trigger(organisation_id, "w", "ada", {"code": "1"}, transaction_id="tx-send-path")
    return send_parked(organisation_id)


def send_path_objects(reports: list[BatchReport]) -> list[Any]:
    objects: list[Any] = []
    for report in reports:
        objects.append(report)
        for job in report.jobs:
            objects += [job, *job.candidates]
        for outcome in report.outcomes.values():
            objects += [outcome, *outcome.attempts]
    return objects


def prepared_and_refused(candidates: list[Candidate]) -> list[Any]:
    """Each candidate prepared as a send prepares it: the prepared integration, or the error."""
    runtime = sending_runtime()
    guard = DestinationGuard(get_settings().url_allowlist)
    found: list[Any] = []
    for candidate in candidates:
        try:
            found.append(runtime.run(prepare(candidate, guard, runtime)))
        except IntegrationError as exc:
            found.append(exc)
    return found


def shown(objects: list[Any]) -> list[str]:
    for item in objects:
        logger.info("send path object %r", item)
        logger.info("send path object %s", item)
    return [repr(item) for item in objects] + [str(item) for item in objects]


def test_no_object_of_a_real_batch_shows_a_secret(
    server: ScriptedServer,
    organisation_id: uuid.UUID,
    secret: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    reports = sent(server, organisation_id, secret)
    # The server did receive the secrets, and echoed them back: the checks look for something.
    assert any(secret in json.dumps(seen.headers) for seen in server.seen)
    objects = send_path_objects(reports)
    candidates = [item for item in objects if isinstance(item, Candidate)]
    assert {candidate.provider for candidate in candidates} == {"fake_http"}
    assert all(isinstance(c.credentials, FakeCredentials) for c in candidates)
    prepared = prepared_and_refused(candidates)
    assert any(isinstance(item, IntegrationError) for item in prepared)
    assert any(not isinstance(item, IntegrationError) for item in prepared)
    texts = shown(objects + prepared)
    texts += [record.getMessage() for record in caplog.records]
    texts += [record.exc_text or "" for record in caplog.records]
    assert len(caplog.records) > len(objects)
    assert [text[:200] for text in texts if secret in text] == []

    with database().session() as session:
        rows = session.execute(
            select(DeliveryAttempt.__table__).where(
                DeliveryAttempt.organisation_id == organisation_id
            )
        ).all()
    outcomes = {row.outcome.value for row in rows}
    assert {"retryable", "integration_error", "sent"} <= outcomes
    stored = [json.dumps(list(row), default=str) for row in rows]
    assert [text for text in stored if secret in text] == []


def test_loaded_credentials_and_their_errors_show_no_secret(
    organisation_id: uuid.UUID, secret: str
) -> None:
    row_id = integration(organisation_id, "one", secret, "https://example.com/x", 0)
    with database().session() as session:
        candidate = load_candidate(session, row_id, organisation_id)
    assert candidate is not None and candidate.credentials is not None
    assert isinstance(candidate.credentials, FakeCredentials)
    assert candidate.credentials.api_key.get_secret_value() == f"{secret}-one"
    with pytest.raises(ValidationError) as invalid:
        FakeCredentials.model_validate({"api_key": 7, "token": secret})
    texts = [repr(candidate), str(candidate), repr(invalid.value), str(invalid.value)]
    assert [text for text in texts if secret in text] == []
