"""Credentials are Fernet tokens in the raw column and sealed in task arguments."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from celery.signals import before_task_publish
from sqlalchemy import text

from dispatcher import enqueue_action
from dispatcher.runtime.resources import database
from models import Integration
from tests.dispatcher.support import created_id, fetch

SECRET = "SECRET-plaintext-must-not-be-stored-7f3a"


@pytest.mark.usefixtures("worker")
def test_raw_column_and_task_arguments_hold_no_plaintext(organisation_id: uuid.UUID) -> None:
    published: list[dict[str, Any]] = []

    def capture(body: Any = None, **_: Any) -> None:
        published.append({"body": body})

    before_task_publish.connect(capture, weak=False)
    try:
        handle = enqueue_action(
            "create_integration",
            {"name": "Mail", "provider": "fake", "credentials": {"api_key": SECRET}},
            organisation_id=organisation_id,
        )
        integration_id = created_id(handle.get(timeout=30))
    finally:
        before_task_publish.disconnect(capture)

    assert published, "no task message was published"
    message = json.dumps(published, default=str)
    assert SECRET not in message
    assert "$sealed" in message

    with database().session() as session:
        raw = session.execute(
            text("SELECT credentials FROM integrations WHERE id = :id"), {"id": integration_id}
        ).scalar_one()
    assert SECRET not in raw
    assert raw.startswith("gAAAAA")  # a Fernet token
    assert fetch(Integration, integration_id).credentials == {"api_key": SECRET}
    assert SECRET not in repr(fetch(Integration, integration_id))
