"""``/v1/integrations``: an organisation's provider accounts, as Novu's SDKs manage them.

Changes run the integration actions in this process (:func:`dispatcher.producer.run_action`):
validated against the provider's models, credentials encrypted at rest, the answer is the row
as committed. Credentials are write-only: no answer carries them (Novu too leaves them out for
API-key callers), and errors name fields, never values.

Novu's names, mapped by :mod:`dispatcher.api.novu_providers`: ``providerId`` is Novu's id,
``credentials`` Novu's camelCase names split into our credentials and settings, ``active`` our
status, ``_environmentId`` our environment's name. Novu's ``identifier`` has no column here: it
is kept in the integration's ``meta`` (the id when none was given). ``DELETE`` deactivates and
marks the row deleted in ``meta`` (deliveries keep naming it); deleted rows are never listed
and answer 404. An integration of the ``webhook`` channel, which Novu has no name for, is
listed with ``channel: null`` (as Novu lists its agent integrations, which have none).

Accepted and ignored: ``check`` (``POST /{id}/test`` checks on request) and ``conditions``:
Novu's are its step-filter trees, which this project's integration conditions
(``{field, op, value}``) are not, and the SDK refuses an answer whose conditions are not
Novu's; they are set with the ``update_integration`` action (``POST /v1/actions/...``).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import defer

from dispatcher.api.errors import NotFoundError, UnprocessableError, camel
from dispatcher.api.novu_providers import from_novu_id, novu_id, split_credentials
from dispatcher.api.rate_limit import CallerDep
from dispatcher.api.routing import NOT_FOUND, resource_router
from dispatcher.api.schemas import Envelope, WireModel, envelope
from dispatcher.errors import ActionArgumentsError
from dispatcher.producer import run_action
from dispatcher.results import Err, ErrorCode
from dispatcher.runtime.resources import database
from dispatcher.sending.check import check_candidate
from dispatcher.sending.integrations import load_candidate
from models import ChannelType, Integration, IntegrationStatus
from models.types import utcnow

router: APIRouter = resource_router(prefix="/v1/integrations", tag="Integrations")

NovuChannel = Literal["in_app", "email", "sms", "chat", "push"]
#: Keys of ``meta`` this router owns.
IDENTIFIER = "novu_identifier"
DELETED_AT = "deleted_at"


class IntegrationAnswer(WireModel):
    id: str = Field(alias="_id")
    environment_id: str = Field(alias="_environmentId")
    organization_id: str = Field(alias="_organizationId")
    name: str
    identifier: str
    provider_id: str
    channel: NovuChannel | None = None
    active: bool
    deleted: bool = False
    primary: bool
    created_at: str
    updated_at: str


class CreateIntegrationRequest(WireModel):
    provider_id: str = Field(min_length=1)
    channel: NovuChannel | Literal["webhook"] | None = None
    name: str | None = None
    identifier: str | None = Field(default=None, max_length=200)
    environment_id: str | None = Field(default=None, alias="_environmentId")
    credentials: dict[str, Any] = Field(default_factory=dict)
    active: bool = True
    check: bool | None = None
    conditions: list[dict[str, Any]] | None = None


class UpdateIntegrationRequest(WireModel):
    name: str | None = None
    identifier: str | None = Field(default=None, max_length=200)
    environment_id: str | None = Field(default=None, alias="_environmentId")
    active: bool | None = None
    credentials: dict[str, Any] | None = None
    check: bool | None = None
    conditions: list[dict[str, Any]] | None = None


def answer(row: Integration) -> IntegrationAnswer:
    channel = row.channel_type.value
    return IntegrationAnswer(
        _id=str(row.id),
        _environmentId=row.environment,
        _organizationId=str(row.organisation_id),
        name=row.name,
        identifier=str(row.meta.get(IDENTIFIER) or row.id),
        provider_id=novu_id(row.provider),
        channel=None if channel == ChannelType.WEBHOOK.value else channel,
        active=row.status is IntegrationStatus.ACTIVE,
        primary=row.is_primary,
        created_at=row.created_at.isoformat(),
        updated_at=row.updated_at.isoformat(),
    )


def _rows(organisation_id: uuid.UUID, *, active_only: bool = False) -> list[Integration]:
    query = (
        select(Integration)
        .options(defer(Integration.credentials))
        .where(Integration.organisation_id == organisation_id)
        .order_by(Integration.channel_type, Integration.is_primary.desc(), Integration.priority,
                  Integration.created_at)
    )  # fmt: skip
    if active_only:
        query = query.where(Integration.status == IntegrationStatus.ACTIVE)
    with database().session() as session:
        rows = list(session.scalars(query))
    return [row for row in rows if DELETED_AT not in row.meta]


def owned(organisation_id: uuid.UUID, integration_id: str) -> Integration:
    """The caller's integration, or 404 (another organisation's answers as a missing one)."""
    try:
        key = uuid.UUID(integration_id)
    except ValueError:
        raise NotFoundError("integration not found") from None
    with database().session() as session:
        row = session.scalars(
            select(Integration)
            .options(defer(Integration.credentials))
            .where(Integration.id == key, Integration.organisation_id == organisation_id)
        ).one_or_none()
    if row is None or DELETED_AT in row.meta:
        raise NotFoundError("integration not found")
    return row


def act(action: str, arguments: dict[str, Any], organisation_id: uuid.UUID) -> str:
    """Run an integration action for the caller's organisation; its errors in Novu's shape."""
    try:
        result = run_action(action, arguments, organisation_id=organisation_id)
    except ActionArgumentsError as exc:
        raise UnprocessableError(
            {wire(str(item["field"])): [str(item["message"])] for item in exc.errors}
        ) from None
    if isinstance(result, Err):
        if result.code == ErrorCode.NOT_FOUND:
            raise NotFoundError("integration not found")
        listed = result.details.get("errors") or [
            {"field": result.details.get("field") or "body", "message": result.message}
        ]
        raise UnprocessableError({wire(str(e["field"])): [str(e["message"])] for e in listed})
    return str(result.value)


#: Our action argument names as the caller sent them.
WIRE_NAMES = {"provider": "providerId", "channel_type": "channel", "environment": "_environmentId",
              "status": "active", "integration_id": "integrationId"}  # fmt: skip


def wire(field: str) -> str:
    head, _, rest = field.partition(".")
    name = WIRE_NAMES.get(head, camel(head))
    return f"{name}.{rest}" if rest else name


IntegrationId = Annotated[str, Path(alias="integrationId")]


@router.get("", response_model=Envelope[list[IntegrationAnswer]])
def list_integrations(caller: CallerDep) -> dict[str, Any]:
    """Every integration of the organisation (never its credentials)."""
    return envelope([answer(row) for row in _rows(caller.organisation_id)])


@router.get("/active", response_model=Envelope[list[IntegrationAnswer]])
def list_active_integrations(caller: CallerDep) -> dict[str, Any]:
    """The integrations that send."""
    return envelope([answer(row) for row in _rows(caller.organisation_id, active_only=True)])


@router.post("", status_code=201, response_model=Envelope[IntegrationAnswer])
def create_integration(body: CreateIntegrationRequest, caller: CallerDep) -> dict[str, Any]:
    """Connect a provider account (201 with the integration, without its credentials)."""
    provider = from_novu_id(body.provider_id)
    split = split_credentials(provider, body.credentials)
    meta = {IDENTIFIER: body.identifier} if body.identifier else {}
    arguments: dict[str, Any] = {
        "name": body.name or provider.novu_id,
        "provider": provider.name,
        "credentials": split.credentials,
        "settings": split.settings,
        "meta": meta,
    }
    if body.channel is not None:
        arguments["channel_type"] = body.channel
    if body.environment_id:
        arguments["environment"] = body.environment_id
    created = act("create_integration", arguments, caller.organisation_id)
    if not body.active:
        act("deactivate_integration", {"integration_id": created}, caller.organisation_id)
    return envelope(answer(owned(caller.organisation_id, created)))


@router.put("/{integrationId}", response_model=Envelope[IntegrationAnswer], responses=NOT_FOUND)
def update_integration(
    integration_id: IntegrationId, body: UpdateIntegrationRequest, caller: CallerDep
) -> dict[str, Any]:
    """Change the name, credentials, conditions or whether it is active. Credentials given are
    split as on create: the secret part replaces the stored one only when it holds any."""
    row = owned(caller.organisation_id, integration_id)
    if body.environment_id is not None and body.environment_id != row.environment:
        raise UnprocessableError({"_environmentId": ["an integration cannot change environment"]})
    arguments: dict[str, Any] = {"integration_id": str(row.id)}
    if body.name is not None:
        arguments["name"] = body.name
    if body.credentials is not None:
        split = split_credentials(from_novu_id(novu_id(row.provider)), body.credentials)
        if split.credentials:
            arguments["credentials"] = split.credentials
        if split.settings:
            arguments["settings"] = {**row.settings, **split.settings}
    if body.active is not None:
        arguments["status"] = "active" if body.active else "inactive"
    if body.identifier is not None:
        arguments["meta"] = {IDENTIFIER: body.identifier}
    act("update_integration", arguments, caller.organisation_id)
    return envelope(answer(owned(caller.organisation_id, str(row.id))))


@router.delete(
    "/{integrationId}", response_model=Envelope[list[IntegrationAnswer]], responses=NOT_FOUND
)
def delete_integration(integration_id: IntegrationId, caller: CallerDep) -> dict[str, Any]:
    """Deactivate and hide an integration; answers the integrations that remain."""
    row = owned(caller.organisation_id, integration_id)
    act(
        "update_integration",
        {"integration_id": str(row.id), "status": "inactive",
         "meta": {DELETED_AT: utcnow().isoformat()}},
        caller.organisation_id,
    )  # fmt: skip
    return envelope([answer(row) for row in _rows(caller.organisation_id)])


@router.post(
    "/{integrationId}/set-primary", response_model=Envelope[IntegrationAnswer], responses=NOT_FOUND
)
def set_primary(integration_id: IntegrationId, caller: CallerDep) -> dict[str, Any]:
    """Make an active integration the first tried for its channel and environment."""
    row = owned(caller.organisation_id, integration_id)
    act("set_primary_integration", {"integration_id": str(row.id)}, caller.organisation_id)
    return envelope(answer(owned(caller.organisation_id, str(row.id))))


class CheckAnswer(WireModel):
    ok: bool
    detail: str
    asked_provider: bool


@router.post("/{integrationId}/test", response_model=Envelope[CheckAnswer], responses=NOT_FOUND)
def test_integration(integration_id: IntegrationId, caller: CallerDep) -> dict[str, Any]:
    """Ours: check the stored credentials as ``dispatcher integrations test`` does (through the
    URL guard; the provider asked where it has a harmless call). 200 with ``ok`` either way."""
    row = owned(caller.organisation_id, integration_id)
    with database().session() as session:
        candidate = load_candidate(session, row.id, caller.organisation_id)
    if candidate is None:
        raise NotFoundError("integration not found")
    outcome = check_candidate(candidate)
    return envelope(
        CheckAnswer(ok=outcome.ok, detail=outcome.detail, asked_provider=outcome.asked_provider)
    )
