"""Learning actions: flows, courses, lesson assignment and flow progress."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import Field
from sqlalchemy import select

from dispatcher.actions.base import ActionArgs, ActionContext, Ref, catalogue
from dispatcher.results import Ok, Result
from dispatcher.validation import LongText, Name, Name100
from models import Agent, Course, Flow, FlowProgress, Lesson, ProgressStatus, User
from models.types import utcnow


class CreateFlowArgs(ActionArgs):
    name: Name
    description: LongText | None = None
    steps: list[Name] = Field(default_factory=list)


@catalogue.action("create_flow", CreateFlowArgs)
def create_flow(ctx: ActionContext, args: CreateFlowArgs) -> Result:
    """Create a flow: a named sequence of steps."""
    flow = ctx.add(
        Flow(name=args.name, description=args.description, steps=list(args.steps), meta=args.meta)
    )
    return Ok(str(flow.id))


class CreateCourseArgs(ActionArgs):
    name: Name
    description: LongText | None = None
    flow_id: Annotated[uuid.UUID | None, Ref(Flow)] = None


@catalogue.action("create_course", CreateCourseArgs)
def create_course(ctx: ActionContext, args: CreateCourseArgs) -> Result:
    """Create a course, optionally following a flow."""
    course = ctx.add(
        Course(name=args.name, description=args.description, flow_id=args.flow_id, meta=args.meta)
    )
    return Ok(str(course.id))


class AssignLessonArgs(ActionArgs):
    flow_id: Annotated[uuid.UUID | None, Ref(Flow)] = None
    course_id: Annotated[uuid.UUID | None, Ref(Course)] = None
    step_name: Name | None = None
    user_id: Annotated[uuid.UUID | None, Ref(User)] = None
    agent_id: Annotated[uuid.UUID | None, Ref(Agent)] = None
    role: Name100 | None = None
    assigned_by: Annotated[uuid.UUID | None, Ref(User)] = None


@catalogue.action("assign_lesson", AssignLessonArgs)
def assign_lesson(ctx: ActionContext, args: AssignLessonArgs) -> Result:
    """Assign a lesson (a step of a flow or course) to a user or agent; stamps assigned_at."""
    now = utcnow()
    lesson = ctx.add(
        Lesson(
            flow_id=args.flow_id,
            course_id=args.course_id,
            step_name=args.step_name,
            user_id=args.user_id,
            agent_id=args.agent_id,
            role=args.role,
            assigned_by=args.assigned_by,
            assigned_at=now,
            created_at=now,
            meta=args.meta,
        )
    )
    return Ok(str(lesson.id))


class UpdateFlowProgressArgs(ActionArgs):
    flow_id: Annotated[uuid.UUID, Ref(Flow)]
    step_name: Name
    user_id: Annotated[uuid.UUID | None, Ref(User)] = None
    agent_id: Annotated[uuid.UUID | None, Ref(Agent)] = None
    status: Literal["Not Started", "In Progress", "Completed", "Blocked", "Skipped"]
    notes: LongText | None = None


@catalogue.action("update_flow_progress", UpdateFlowProgressArgs)
def update_flow_progress(ctx: ActionContext, args: UpdateFlowProgressArgs) -> Result:
    """Set the status of one step of a flow for a user or agent; stamps updated_at."""
    existing = ctx.session.scalars(
        select(FlowProgress).where(
            FlowProgress.organisation_id == ctx.organisation_id,
            FlowProgress.flow_id == args.flow_id,
            FlowProgress.step_name == args.step_name,
            FlowProgress.user_id.is_(None)
            if args.user_id is None
            else FlowProgress.user_id == args.user_id,
            FlowProgress.agent_id.is_(None)
            if args.agent_id is None
            else FlowProgress.agent_id == args.agent_id,
        )
    ).one_or_none()
    if existing is None:
        existing = ctx.add(
            FlowProgress(
                flow_id=args.flow_id,
                step_name=args.step_name,
                user_id=args.user_id,
                agent_id=args.agent_id,
                status=ProgressStatus(args.status),
                notes=args.notes,
                meta=args.meta,
            )
        )
    else:
        existing.status = ProgressStatus(args.status)
        existing.notes = args.notes
        existing.meta = {**existing.meta, **args.meta}
        existing.updated_at = utcnow()
    return Ok(str(existing.id))
