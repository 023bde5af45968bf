"""Schedule actions: fire a workflow for stored recipients on a cron schedule in a time zone."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import Field, StringConstraints, field_validator
from sqlalchemy import select

from dispatcher.actions.base import ActionArgs, ActionContext, Ref, catalogue
from dispatcher.config import get_settings
from dispatcher.notifications.events import Target
from dispatcher.notifications.scheduling import first_fire_time, parse_cron, parse_timezone
from dispatcher.results import Err, ErrorCode, Ok, Result
from dispatcher.validation import Key, oversize_problem
from models import Schedule, Workflow
from models.types import utcnow

#: Targets stored on one schedule; a topic reaches any number of subscribers.
MAX_TARGETS = 1000


class CreateScheduleArgs(ActionArgs):
    workflow: Key
    #: Five fields (minute hour day-of-month month day-of-week) or ``@hourly``, ``@daily``, ...
    cron: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    #: IANA name; the cron fields are wall-clock time there.
    timezone: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "UTC"
    #: Subscriber ids, inline subscribers, or ``{"topic": key}``, as ``trigger`` takes them.
    to: list[Target] = Field(min_length=1, max_length=MAX_TARGETS)
    payload: dict[str, Any] = Field(default_factory=dict)

    @field_validator("cron")
    @classmethod
    def _cron_parses(cls, value: str) -> str:
        return parse_cron(value)

    @field_validator("timezone")
    @classmethod
    def _timezone_exists(cls, value: str) -> str:
        parse_timezone(value)
        return value

    @field_validator("to", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return value if isinstance(value, list) else [value]


@catalogue.action("create_schedule", CreateScheduleArgs)
def create_schedule(ctx: ActionContext, args: CreateScheduleArgs) -> Result:
    """Trigger a workflow for stored recipients whenever a cron expression matches."""
    exists = ctx.session.scalar(
        select(Workflow.id).where(
            Workflow.organisation_id == ctx.organisation_id, Workflow.key == args.workflow
        )
    )
    if exists is None:
        return Err(
            ErrorCode.NOT_FOUND,
            f"workflow: no workflow {args.workflow!r} in this organisation",
            {"field": "workflow"},
        )
    message = oversize_problem("payload", args.payload, get_settings().max_payload_bytes)
    if message is not None:
        return Err(
            ErrorCode.INVALID_ARGS,
            f"invalid arguments: payload: {message}",
            {"errors": [{"field": "payload", "message": message}]},
        )
    schedule = ctx.add(
        Schedule(
            workflow_key=args.workflow,
            cron=args.cron,
            timezone=args.timezone,
            # Inline subscribers keep only the fields given, so a firing updates only those.
            to=[
                target
                if isinstance(target, str)
                else target.model_dump(mode="json", exclude_unset=True)
                for target in args.to
            ],
            payload=args.payload,
            active=True,
            next_fire_at=first_fire_time(args.cron, args.timezone, utcnow()),
            meta=args.meta,
        )
    )
    return Ok(str(schedule.id))


class DeactivateScheduleArgs(ActionArgs):
    schedule_id: Annotated[uuid.UUID, Ref(Schedule)]


@catalogue.action("deactivate_schedule", DeactivateScheduleArgs)
def deactivate_schedule(ctx: ActionContext, args: DeactivateScheduleArgs) -> Result:
    """Stop a schedule from firing again (a firing already under way completes)."""
    schedule = ctx.get(Schedule, args.schedule_id)
    assert schedule is not None  # the reference was checked before the handler runs
    schedule.active = False
    schedule.next_fire_at = None
    schedule.updated_at = utcnow()
    if args.meta:
        schedule.meta = {**schedule.meta, **args.meta}
    return Ok(str(schedule.id))
