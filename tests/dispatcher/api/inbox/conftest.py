"""An organisation with a browser inbox (its secret and allowed origin), the application in
this process, and helpers that open a subscriber's session and put messages in its inbox."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dispatcher.api import create_app
from dispatcher.api.inbox.secrets import rotate, set_origins
from dispatcher.api.rate_limit import api_rate_store
from dispatcher.organisations import create_organisation
from dispatcher.runtime.resources import database
from models import (
    ChannelType,
    Delivery,
    DeliveryStatus,
    InboxMessage,
    Notification,
    StepKind,
    Subscriber,
    Workflow,
)
from models.types import utcnow

ORIGIN = "https://app.example.com"
ACTIONS_BOTH = {"primary": {"label": "Yes", "url": None}, "secondary": {"label": "No", "url": None}}


def hash_of(subscriber_id: str, secret: str) -> str:
    return hmac.new(secret.encode(), subscriber_id.encode(), hashlib.sha256).hexdigest()


@dataclass
class Inbox:
    """One organisation's browser inbox, opened through ``client``."""

    client: TestClient
    organisation_id: uuid.UUID
    application_identifier: str
    secret: str = field(repr=False)

    def session(self, subscriber_id: str, proof: str | None = None) -> Any:
        return self.client.post(
            "/v1/inbox/session",
            json={
                "applicationIdentifier": self.application_identifier,
                "subscriber": {"subscriberId": subscriber_id},
                "subscriberHash": proof or hash_of(subscriber_id, self.secret),
            },
        )

    def headers(self, subscriber_id: str) -> dict[str, str]:
        answer = self.session(subscriber_id)
        assert answer.status_code == 201, answer.text
        return {"Authorization": f"Bearer {answer.json()['data']['token']}"}

    def subscriber_row(self, subscriber_id: str) -> uuid.UUID:
        with database().transaction() as session:
            found = (
                session.query(Subscriber)
                .filter_by(organisation_id=self.organisation_id, external_id=subscriber_id)
                .one_or_none()
            )
            if found is None:
                found = Subscriber(organisation_id=self.organisation_id, external_id=subscriber_id)
                session.add(found)
                session.flush()
            return found.id

    def workflow(self, key: str, *, critical: bool = False) -> uuid.UUID:
        with database().transaction() as session:
            workflow = Workflow(
                organisation_id=self.organisation_id, key=key, name=key.title(), critical=critical
            )
            session.add(workflow)
            session.flush()
            return workflow.id

    def put(
        self,
        subscriber_id: str,
        body: str = "hello",
        *,
        tags: list[str] | None = None,
        workflow_id: uuid.UUID | None = None,
        actions: dict[str, Any] | None = None,
        created_at: datetime | None = None,
    ) -> str:
        """A message in the subscriber's inbox, as the sender writes it back."""
        subscriber = self.subscriber_row(subscriber_id)
        now = created_at or utcnow()
        with database().transaction() as session:
            delivery_id = None
            if workflow_id is not None:
                notification = Notification(
                    organisation_id=self.organisation_id,
                    transaction_id=uuid.uuid4().hex,
                    workflow_id=workflow_id,
                    subscriber_id=subscriber,
                )
                session.add(notification)
                session.flush()
                delivery = Delivery(
                    organisation_id=self.organisation_id,
                    notification_id=notification.id,
                    step_position=0,
                    step_kind=StepKind.IN_APP,
                    channel_type=ChannelType.IN_APP,
                    status=DeliveryStatus.SENT,
                )
                session.add(delivery)
                session.flush()
                delivery_id = delivery.id
            message = InboxMessage(
                organisation_id=self.organisation_id,
                subscriber_id=subscriber,
                delivery_id=delivery_id,
                title="Title",
                body=body,
                data={},
                tags=tags or [],
                actions=actions or {},
                created_at=now,
                updated_at=now,
            )
            session.add(message)
            session.flush()
            return str(message.id)


def make_inbox(client: TestClient, name: str = "Inbox") -> Inbox:
    organisation_id = create_organisation(f"{name} {uuid.uuid4().hex[:6]}")
    rotated = rotate(organisation_id)
    set_origins(organisation_id, [ORIGIN])
    return Inbox(client, organisation_id, rotated.application_identifier, rotated.secret)


@pytest.fixture
def client(postgres_url: str, redis_url: str) -> Iterator[TestClient]:
    api_rate_store.cache_clear()
    with TestClient(create_app(), raise_server_exceptions=False) as test_client:
        yield test_client
    api_rate_store.cache_clear()


@pytest.fixture
def inbox(client: TestClient) -> Inbox:
    return make_inbox(client)


def ago(seconds: float) -> datetime:
    return utcnow() - timedelta(seconds=seconds)
