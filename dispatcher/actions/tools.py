"""Agent tools: invoke a tool bound to an integration (sendEmail, sendSMS, postToSlack, ...).

The caller must hold a grant on the tool (directly, or through one of their groups; agents
directly). The message then goes through the normal delivery path, with the tool's integration
tried first and the organisation's other integrations of that channel as fallback, retries and
every attempt recorded; the notification's ``actor`` records who invoked which tool.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import Field, model_validator
from sqlalchemy import or_, select

from dispatcher.actions.base import ActionArgs, ActionContext, Ref, catalogue
from dispatcher.config import get_settings
from dispatcher.errors import TriggerError
from dispatcher.notifications.events import Target, TriggerEvent
from dispatcher.notifications.triggers import write_event
from dispatcher.results import Err, ErrorCode, Ok, Result
from dispatcher.validation import LongText, Name
from models import (
    Agent,
    ChannelType,
    Grant,
    GranteeType,
    Integration,
    Membership,
    ResourceType,
    StepKind,
    Tool,
    User,
    Workflow,
    WorkflowStep,
)
from models.ids import new_hex_id

#: Tool actions and the channel each one sends on.
TOOL_CHANNELS = {
    "sendEmail": ChannelType.EMAIL,
    "sendSMS": ChannelType.SMS,
    "postToSlack": ChannelType.CHAT,
    "postToChat": ChannelType.CHAT,
    "sendPush": ChannelType.PUSH,
    "sendWebhook": ChannelType.WEBHOOK,
    "notifyInApp": ChannelType.IN_APP,
}
#: The template of the per-channel system workflow tool messages travel through.
TOOL_TEMPLATE = {
    "subject": "{{ payload.subject | default('') }}",
    "title": "{{ payload.subject | default('') }}",
    "body": "{{ payload.body }}",
}


class InvokeToolArgs(ActionArgs):
    tool_id: Annotated[uuid.UUID, Ref(Tool)]
    invoked_by_user: Annotated[uuid.UUID | None, Ref(User)] = None
    invoked_by_agent: Annotated[uuid.UUID | None, Ref(Agent)] = None
    #: Subscriber ids, inline subscribers or ``{"topic": key}``, as for a trigger.
    to: list[Target] = Field(min_length=1, max_length=1000)
    subject: Name | None = None
    body: LongText
    data: dict[str, Any] = Field(default_factory=dict)
    #: Idempotency key of this invocation; repeated, nothing new is sent.
    invocation_id: Name = Field(default_factory=new_hex_id)

    @model_validator(mode="after")
    def _one_caller(self) -> InvokeToolArgs:
        if (self.invoked_by_user is None) == (self.invoked_by_agent is None):
            raise ValueError("invoked_by_user or invoked_by_agent: give exactly one")
        return self


def _granted(ctx: ActionContext, tool_id: uuid.UUID, args: InvokeToolArgs) -> bool:
    grantees: list[tuple[GranteeType, uuid.UUID]] = []
    if args.invoked_by_agent is not None:
        grantees.append((GranteeType.AGENT, args.invoked_by_agent))
    if args.invoked_by_user is not None:
        grantees.append((GranteeType.USER, args.invoked_by_user))
        groups = ctx.session.scalars(
            select(Membership.group_id).where(
                Membership.organisation_id == ctx.organisation_id,
                Membership.user_id == args.invoked_by_user,
            )
        ).all()
        grantees += [(GranteeType.GROUP, group) for group in groups]
    matches = [
        (Grant.grantee_type == kind) & (Grant.grantee_id == grantee) for kind, grantee in grantees
    ]
    return (
        ctx.session.scalars(
            select(Grant.id)
            .where(
                Grant.organisation_id == ctx.organisation_id,
                Grant.resource_type == ResourceType.TOOL,
                Grant.resource_id == tool_id,
                Grant.revoked_at.is_(None),
                or_(*matches),
            )
            .limit(1)
        ).first()
        is not None
    )


def _system_workflow(ctx: ActionContext, channel: ChannelType) -> str:
    key = f"tool-{channel.replace('_', '-')}"
    exists = ctx.session.scalar(
        select(Workflow.id).where(
            Workflow.organisation_id == ctx.organisation_id, Workflow.key == key
        )
    )
    if exists is None:
        workflow = ctx.add(Workflow(key=key, name=f"Agent tool messages ({channel})"))
        ctx.add(
            WorkflowStep(
                workflow_id=workflow.id, position=0, kind=StepKind(channel), template=TOOL_TEMPLATE
            )
        )
    return key


@catalogue.action("invoke_tool", InvokeToolArgs)
def invoke_tool(ctx: ActionContext, args: InvokeToolArgs) -> Result:
    """Invoke an agent tool that sends a message; checks the caller's grant on the tool."""
    tool = ctx.get(Tool, args.tool_id)
    if tool is None:
        return Err(ErrorCode.NOT_FOUND, "tool_id: no such tool")
    channel = TOOL_CHANNELS.get(tool.action or "")
    if channel is None:
        known = ", ".join(sorted(TOOL_CHANNELS))
        return Err(
            ErrorCode.INVALID_ARGS,
            f"tool_id: the tool's action {tool.action!r} sends "
            f"nothing; sending actions are {known}",
            {"field": "tool_id"},
        )
    if not _granted(ctx, tool.id, args):
        return Err(
            ErrorCode.FORBIDDEN,
            "tool_id: the caller holds no grant on this tool",
            {"field": "tool_id"},
        )
    integration = ctx.get(Integration, tool.integration_id) if tool.integration_id else None
    overrides: dict[str, dict[str, Any]] = {channel: {"data": args.data}}
    if integration is not None:
        overrides[channel]["integration_id"] = str(integration.id)
    actor = {
        "tool_id": str(tool.id),
        "tool": tool.name,
        "invoked_by_user": str(args.invoked_by_user) if args.invoked_by_user else None,
        "invoked_by_agent": str(args.invoked_by_agent) if args.invoked_by_agent else None,
    }
    event = TriggerEvent(
        workflow=_system_workflow(ctx, channel),
        to=args.to,
        payload={"subject": args.subject or "", "body": args.body},
        transaction_id=f"tool:{tool.id}:{args.invocation_id}",
        overrides=overrides,
        actor=actor,
    )
    ctx.session.flush()
    try:
        # Not reserved for a broker message: this runs inside the action's transaction, so the
        # outbox sweeper sends it once that commits (within one sweep interval).
        receipt, _ = write_event(
            ctx.session, ctx.organisation_id, event, get_settings(), reserve=False
        )
    except TriggerError as exc:
        return Err(ErrorCode.INVALID_ARGS, str(exc), {"errors": exc.errors})
    return Ok(
        {
            "transaction_id": receipt.transaction_id,
            "notification_ids": receipt.notification_ids,
            "duplicate": receipt.duplicate,
        }
    )
