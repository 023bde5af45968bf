"""Integration actions: connect an organisation's provider account, change it, pick the primary.

Credentials are validated against the provider's own credentials model (errors name the field,
never the value) and stored encrypted; in task arguments they travel sealed.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from sqlalchemy import update
from sqlalchemy.orm import defer

from dispatcher.actions.base import ActionArgs, ActionContext, Ref, Sealed, catalogue
from dispatcher.results import Err, ErrorCode, Ok, Result
from dispatcher.sending.ambiguity import split_settings
from dispatcher.validation import Name, Name50
from models import ChannelType, Integration, IntegrationStatus, User
from models.types import utcnow
from providers import UnknownProviderError, default_registry

#: Loading an integration to change it does not decrypt its stored credentials.
WITHOUT_CREDENTIALS = defer(Integration.credentials)


def _describe(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or '(object)'}: {item['msg']}"
        for item in error.errors(include_input=False, include_url=False)
    )


def _check_provider(name: str) -> str:
    try:
        default_registry.get(name)
    except UnknownProviderError as exc:
        raise ValueError(str(exc)) from None
    return name


def _check_credentials(provider: str | None, credentials: dict[str, Any]) -> dict[str, Any]:
    if provider is None:
        return credentials
    try:
        default_registry.get(provider).parse_credentials(credentials)
    except ValidationError as exc:
        raise ValueError(f"do not fit provider {provider!r}: {_describe(exc)}") from None
    return credentials


def _check_settings(provider: str | None, settings: dict[str, Any]) -> dict[str, Any]:
    if provider is None:
        return settings
    try:
        _, provider_settings = split_settings(settings)
        default_registry.get(provider).parse_settings(provider_settings)
    except ValidationError as exc:
        raise ValueError(f"do not fit provider {provider!r}: {_describe(exc)}") from None
    return settings


class CreateIntegrationArgs(ActionArgs):
    name: Name
    provider: Name
    channel_type: ChannelType | None = None
    environment: Name50 = "production"
    credentials: Annotated[dict[str, Any], Sealed()] = Field(repr=False)
    settings: dict[str, Any] = Field(default_factory=dict)
    is_primary: bool = False
    priority: int = Field(default=0, ge=0, le=1000)
    conditions: list[dict[str, Any]] = Field(default_factory=list)
    created_by: Annotated[uuid.UUID | None, Ref(User)] = None

    _provider = field_validator("provider")(lambda cls, value: _check_provider(value))

    @field_validator("credentials")
    @classmethod
    def _credentials_fit(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        return _check_credentials(info.data.get("provider"), value)

    @field_validator("settings")
    @classmethod
    def _settings_fit(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        return _check_settings(info.data.get("provider"), value)

    @field_validator("channel_type")
    @classmethod
    def _channel_fits(cls, value: ChannelType | None, info: ValidationInfo) -> ChannelType | None:
        provider = info.data.get("provider")
        if value is None or provider is None:
            return value
        supported = sorted(
            channel.value for channel in default_registry.get(provider).supported_channels()
        )
        if value.value not in supported:
            raise ValueError(
                f"provider {provider!r} serves {', '.join(supported)}, not {value.value!r}"
            )
        return value

    @model_validator(mode="after")
    def _channel_defaults_to_the_providers(self) -> CreateIntegrationArgs:
        if self.channel_type is None:
            self.channel_type = ChannelType(default_registry.get(self.provider).channel.value)
        return self


def _clear_primary(ctx: ActionContext, environment: str, channel_type: ChannelType) -> None:
    ctx.session.execute(
        update(Integration)
        .where(
            Integration.organisation_id == ctx.organisation_id,
            Integration.environment == environment,
            Integration.channel_type == channel_type,
            Integration.is_primary.is_(True),
        )
        .values(is_primary=False, updated_at=utcnow())
    )


@catalogue.action("create_integration", CreateIntegrationArgs)
def create_integration(ctx: ActionContext, args: CreateIntegrationArgs) -> Result:
    """Connect a provider account (credentials encrypted at rest) for one channel."""
    channel_type = ChannelType(args.channel_type or default_registry.get(args.provider).channel)
    if args.is_primary:
        _clear_primary(ctx, args.environment, channel_type)
    integration = ctx.add(
        Integration(
            name=args.name,
            provider=args.provider,
            channel_type=channel_type,
            environment=args.environment,
            credentials=args.credentials,
            settings=args.settings,
            is_primary=args.is_primary,
            priority=args.priority,
            conditions=args.conditions,
            created_by=args.created_by,
            meta=args.meta,
        )
    )
    return Ok(str(integration.id))


class UpdateIntegrationArgs(ActionArgs):
    integration_id: Annotated[uuid.UUID, Ref(Integration)]
    name: Name | None = None
    credentials: Annotated[dict[str, Any] | None, Sealed()] = Field(default=None, repr=False)
    settings: dict[str, Any] | None = None
    priority: int | None = Field(default=None, ge=0, le=1000)
    conditions: list[dict[str, Any]] | None = None
    status: Literal["active", "inactive"] | None = None


@catalogue.action("update_integration", UpdateIntegrationArgs)
def update_integration(ctx: ActionContext, args: UpdateIntegrationArgs) -> Result:
    """Change an integration's name, credentials, settings, priority, conditions or status."""
    # The stored credentials are not read (nor decrypted): new ones replace credentials sealed
    # with a key this process no longer has.
    integration = ctx.get(Integration, args.integration_id, WITHOUT_CREDENTIALS)
    if integration is None:
        return Err(ErrorCode.NOT_FOUND, "integration_id: no such integration")
    try:
        if args.credentials is not None:
            _check_credentials(integration.provider, args.credentials)
        if args.settings is not None:
            _check_settings(integration.provider, args.settings)
    except ValueError as exc:
        field = "credentials" if args.credentials is not None else "settings"
        return Err(ErrorCode.INVALID_ARGS, f"{field}: {exc}", {"field": field})
    if args.name is not None:
        integration.name = args.name
    if args.credentials is not None:
        integration.credentials = args.credentials
        integration.credentials_rotated_at = utcnow()
    if args.settings is not None:
        integration.settings = args.settings
    if args.priority is not None:
        integration.priority = args.priority
    if args.conditions is not None:
        integration.conditions = args.conditions
    if args.status is not None:
        integration.status = IntegrationStatus(args.status)
        if integration.status is IntegrationStatus.INACTIVE:
            integration.is_primary = False
    integration.meta = {**integration.meta, **args.meta}
    integration.updated_at = utcnow()
    return Ok(str(integration.id))


class IntegrationIdArgs(ActionArgs):
    integration_id: Annotated[uuid.UUID, Ref(Integration)]


@catalogue.action("deactivate_integration", IntegrationIdArgs)
def deactivate_integration(ctx: ActionContext, args: IntegrationIdArgs) -> Result:
    """Stop sending through an integration (it stays stored; it is no longer primary)."""
    integration = ctx.get(Integration, args.integration_id, WITHOUT_CREDENTIALS)
    if integration is None:
        return Err(ErrorCode.NOT_FOUND, "integration_id: no such integration")
    integration.status = IntegrationStatus.INACTIVE
    integration.is_primary = False
    integration.updated_at = utcnow()
    return Ok(str(integration.id))


@catalogue.action("set_primary_integration", IntegrationIdArgs)
def set_primary_integration(ctx: ActionContext, args: IntegrationIdArgs) -> Result:
    """Make an active integration the first one tried for its channel and environment."""
    integration = ctx.get(Integration, args.integration_id, WITHOUT_CREDENTIALS)
    if integration is None:
        return Err(ErrorCode.NOT_FOUND, "integration_id: no such integration")
    if integration.status is not IntegrationStatus.ACTIVE:
        return Err(
            ErrorCode.INVALID_ARGS,
            f"integration_id: integration is {integration.status.value}; only an active "
            "integration can be primary",
            {"field": "integration_id"},
        )
    _clear_primary(ctx, integration.environment, integration.channel_type)
    ctx.session.flush()
    integration.is_primary = True
    integration.updated_at = utcnow()
    return Ok(str(integration.id))
