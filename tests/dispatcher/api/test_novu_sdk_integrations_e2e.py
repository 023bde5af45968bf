"""Novu's own Python SDK managing integrations against a real ``dispatcher api`` process:
list, create, update, set as primary, list active and delete, every answer parsed by the SDK."""

from __future__ import annotations

import uuid

from novu_py import Novu, models

from dispatcher.runtime.resources import database, ensure_ready
from models import Integration
from tests.dispatcher.api.conftest import API_LOG

SECRET = "SG.sdk-secret"


def create(novu: Novu, identifier: str) -> models.IntegrationResponseDto:
    return novu.integrations.create(
        create_integration_request_dto=models.CreateIntegrationRequestDto(
            provider_id="sendgrid",
            channel=models.CreateIntegrationRequestDtoChannel.EMAIL,
            name=f"Mail {identifier}",
            identifier=identifier,
            credentials=models.CredentialsDto(
                api_key=SECRET, from_="no-reply@example.com", sender_name="Acme"
            ),
        )
    ).result


def test_the_sdk_manages_integrations(novu: Novu, organisation_id: uuid.UUID) -> None:
    assert novu.integrations.list().result == []
    first = create(novu, "mail-1")
    second = create(novu, "mail-2")
    assert (first.provider_id, first.channel, first.active, first.primary) == (
        "sendgrid", models.IntegrationResponseDtoChannel.EMAIL, True, False,
    )  # fmt: skip
    assert first.credentials is None and first.id is not None and second.id is not None
    ensure_ready()
    with database().session() as session:
        row = session.get(Integration, uuid.UUID(first.id))
        assert row is not None and row.organisation_id == organisation_id
        assert row.credentials == {"api_key": SECRET}

    primary = novu.integrations.set_as_primary(integration_id=second.id).result
    assert primary.primary is True

    updated = novu.integrations.update(
        integration_id=first.id,
        update_integration_request_dto=models.UpdateIntegrationRequestDto(
            name="Renamed", active=False, credentials=models.CredentialsDto(sender_name="Acme Ltd")
        ),
    ).result
    assert (updated.name, updated.active) == ("Renamed", False)
    assert [item.id for item in novu.integrations.list_active().result] == [second.id]
    listed = novu.integrations.list().result
    assert sorted(item.identifier for item in listed) == ["mail-1", "mail-2"]

    remaining = novu.integrations.delete(integration_id=second.id).result
    assert [item.id for item in remaining] == [first.id]
    assert novu.integrations.list_active().result == []
    assert SECRET not in API_LOG.read_text(errors="replace")
