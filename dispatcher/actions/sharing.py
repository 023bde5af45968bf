"""Sharing actions: grant a tool or an integration to a group, user or agent, and revoke it."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from sqlalchemy import select

from dispatcher.actions.base import ActionArgs, ActionContext, Ref, catalogue
from dispatcher.results import Err, ErrorCode, Ok, Result
from models import Agent, Grant, GranteeType, Group, Integration, ResourceType, Tool, User
from models.types import utcnow

RESOURCE_MODELS = {ResourceType.TOOL: Tool, ResourceType.INTEGRATION: Integration}
GRANTEE_MODELS = {GranteeType.GROUP: Group, GranteeType.USER: User, GranteeType.AGENT: Agent}


class GrantAccessArgs(ActionArgs):
    resource_type: Literal["tool", "integration"]
    resource_id: uuid.UUID
    grantee_type: Literal["group", "user", "agent"]
    grantee_id: uuid.UUID
    granted_by: Annotated[uuid.UUID | None, Ref(User)] = None


def _active_grant(ctx: ActionContext, args: GrantAccessArgs) -> Grant | None:
    return ctx.session.scalars(
        select(Grant).where(
            Grant.organisation_id == ctx.organisation_id,
            Grant.resource_type == ResourceType(args.resource_type),
            Grant.resource_id == args.resource_id,
            Grant.grantee_type == GranteeType(args.grantee_type),
            Grant.grantee_id == args.grantee_id,
            Grant.revoked_at.is_(None),
        )
    ).first()


def _check_rows(ctx: ActionContext, args: GrantAccessArgs) -> Err | None:
    resource_model = RESOURCE_MODELS[ResourceType(args.resource_type)]
    grantee_model = GRANTEE_MODELS[GranteeType(args.grantee_type)]
    for field, model, row_id in (
        ("resource_id", resource_model, args.resource_id),
        ("grantee_id", grantee_model, args.grantee_id),
    ):
        if ctx.get(model, row_id) is None:
            return Err(
                ErrorCode.NOT_FOUND,
                f"{field}: no {model.__tablename__} row with id {row_id} in this organisation",
                {"field": field, "table": model.__tablename__, "missing": [str(row_id)]},
            )
    return None


@catalogue.action("grant_access", GrantAccessArgs)
def grant_access(ctx: ActionContext, args: GrantAccessArgs) -> Result:
    """Let a group, user or agent use a tool or an integration (idempotent)."""
    missing = _check_rows(ctx, args)
    if missing is not None:
        return missing
    existing = _active_grant(ctx, args)
    if existing is not None:
        return Ok(str(existing.id))
    grant = ctx.add(
        Grant(
            resource_type=ResourceType(args.resource_type),
            resource_id=args.resource_id,
            grantee_type=GranteeType(args.grantee_type),
            grantee_id=args.grantee_id,
            granted_by=args.granted_by,
            meta=args.meta,
        )
    )
    return Ok(str(grant.id))


class RevokeAccessArgs(ActionArgs):
    grant_id: Annotated[uuid.UUID, Ref(Grant)]


@catalogue.action("revoke_access", RevokeAccessArgs)
def revoke_access(ctx: ActionContext, args: RevokeAccessArgs) -> Result:
    """Revoke a grant; the row stays, stamped with revoked_at, for audit."""
    grant = ctx.get(Grant, args.grant_id)
    if grant is None:
        return Err(ErrorCode.NOT_FOUND, "grant_id: no such grant")
    if grant.revoked_at is None:
        grant.revoked_at = utcnow()
    return Ok(str(grant.id))
