"""``/v1/workflows`` (ours: Novu's workflows are its own framework): create, list, read, change
and delete workflows, each change a new version.

A workflow is named by its ``key`` (what a trigger names) in every path; ``_id`` is the row's
id. Bodies are validated by the workflow actions' own argument models, so the 422 names the
field as the action would, in camelCase: ``steps.1.template`` with the template field and the
line in the message. Writing goes through the same functions as the actions and the CLI
(:mod:`dispatcher.actions.workflows`): ``PUT`` (every field) and ``PATCH`` (the fields given)
write the next version; a notification already triggered keeps the version it was triggered
with. ``GET /{key}?version=N`` reads an earlier version's steps, ``GET /{key}/versions`` lists
them. ``DELETE`` is soft: no new trigger finds the workflow, what it sent and is sending stays.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from dispatcher.actions.base import ActionContext, argument_errors
from dispatcher.actions.workflows import (
    CreateWorkflowArgs,
    UpdateWorkflowArgs,
    find_workflow,
    remove_workflow,
    write_version,
    write_workflow,
)
from dispatcher.api.errors import NotFoundError, UnprocessableError, wire_field
from dispatcher.api.keyset import DEFAULT_LIMIT, MAX_LIMIT, PageRequest, keyset_page
from dispatcher.api.rate_limit import CallerDep
from dispatcher.api.routers.subscribers import RemovedAnswer, timestamp
from dispatcher.api.routing import NOT_FOUND, resource_router
from dispatcher.api.schemas import CursorPage, Envelope, Field, WireModel, envelope
from dispatcher.runtime.resources import database
from models import Workflow, WorkflowStep

router: APIRouter = resource_router(prefix="/v1/workflows", tag="Workflows")

ArgsT = TypeVar("ArgsT", bound=BaseModel)

KeyPath = Annotated[str, Path(min_length=1, max_length=100)]


class StepBody(WireModel):
    kind: str
    #: ``subject``, ``body``, ``html``, ``title``: Jinja2 templates.
    template: dict[str, Any] = Field(default_factory=dict)
    conditions: list[Any] = Field(default_factory=list)
    #: Delay ``seconds``, digest ``window_seconds``... as the step kind needs (kept as sent).
    config: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Options of the step kind, kept as sent: a delay's `seconds`; a digest's "
            "`window_seconds` or `cron` (with an optional IANA `timezone`, else the "
            "subscriber's) and an optional `key` template that separates a subscriber's "
            "digests; a fetch's `url`/`method`/`body`/`headers`, a throttle's "
            "`limit`/`window`/`key`/`overflow` (`skip` or `digest`), provider `options`, "
            '`translations`. Routing, on channel steps: `success` is `"sent"` (default) or '
            '`{"delivered_within": SECONDS}` (not reported delivered in time, or reported '
            "undelivered or soft-bounced: sent again through the next integration); "
            '`wait_for` is `{"step": POSITION, "status": "opened", "within": SECONDS}` '
            "(due SECONDS after that earlier step's send, skipped if it reached the status: "
            "delivered, opened, clicked; seen or read for an in-app step)."
        ),
    )


class WorkflowChange(WireModel):
    """``PATCH``: the fields given change, the others keep their values."""

    name: str | None = None
    description: str | None = None
    critical: bool | None = None
    active: bool | None = None
    steps: list[StepBody] | None = None


class WorkflowBody(WireModel):
    """``PUT``: the whole workflow (a field left out takes its default)."""

    name: str
    description: str | None = None
    critical: bool = False
    active: bool = True
    steps: list[StepBody]


class CreateWorkflowRequest(WireModel):
    key: str
    name: str
    description: str | None = None
    critical: bool = False
    steps: list[StepBody]


class StepAnswer(WireModel):
    id: str = Field(alias="_id")
    position: int
    kind: str
    template: dict[str, Any]
    conditions: list[Any]
    config: dict[str, Any]


class WorkflowAnswer(WireModel):
    id: str = Field(alias="_id")
    key: str
    name: str
    description: str | None = None
    critical: bool
    active: bool
    #: The version whose steps these are (the current one unless ``?version`` asked).
    version: int
    current_version: int
    steps: list[StepAnswer]
    created_at: str
    updated_at: str


class VersionAnswer(WireModel):
    version: int
    current: bool
    created_at: str
    steps: list[StepAnswer]


def _step(step: WorkflowStep) -> StepAnswer:
    return StepAnswer(
        _id=str(step.id), position=step.position, kind=step.kind.value, template=step.template,
        conditions=step.conditions, config=step.config,
    )  # fmt: skip


def render(workflow: Workflow, steps: list[WorkflowStep] | None = None) -> WorkflowAnswer:
    shown = workflow.steps if steps is None else steps
    return WorkflowAnswer(
        _id=str(workflow.id),
        key=workflow.key,
        name=workflow.name,
        description=workflow.description,
        critical=workflow.critical,
        active=workflow.active,
        version=shown[0].version if shown else workflow.version,
        current_version=workflow.version,
        steps=[_step(step) for step in shown],
        created_at=timestamp(workflow.created_at),
        updated_at=timestamp(workflow.updated_at),
    )


def _checked(model: type[ArgsT], given: dict[str, Any]) -> ArgsT:
    """``given`` validated by the action's arguments; a 422 naming each bad field."""
    try:
        return model.model_validate(given)
    except ValidationError as exc:
        errors: dict[str, list[str]] = defaultdict(list)
        for item in argument_errors(exc):
            errors[wire_field(item["field"])].append(item["message"])
        raise UnprocessableError(errors) from None


def _found(session: Session, organisation_id: uuid.UUID, key: str) -> Workflow:
    workflow = find_workflow(ActionContext(session, organisation_id), key)
    if workflow is None:
        raise NotFoundError(f"workflow {key!r} not found")
    return workflow


def _given(body: BaseModel, *, every: bool = False) -> dict[str, Any]:
    fields = body.model_dump(exclude_unset=not every)
    return {name: value for name, value in fields.items() if name in body.model_fields_set or every}


@router.post("", status_code=201, response_model=Envelope[WorkflowAnswer])
def create_workflow(body: CreateWorkflowRequest, caller: CallerDep) -> dict[str, Any]:
    """Create a workflow at version 1 (422 naming ``key`` when the key is taken)."""
    args = _checked(CreateWorkflowArgs, _given(body))
    try:
        with database().transaction() as session:
            workflow = write_workflow(ActionContext(session, caller.organisation_id), args)
            return envelope(render(workflow))
    except IntegrityError:
        raise UnprocessableError({"key": ["a workflow with this key exists"]}) from None


@router.get("", response_model=CursorPage[WorkflowAnswer])
def list_workflows(
    *,
    caller: CallerDep,
    after: str | None = None,
    before: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    order_direction: Annotated[Literal["ASC", "DESC"], Query(alias="orderDirection")] = "DESC",
    include_cursor: Annotated[bool, Query(alias="includeCursor")] = False,
    key: Annotated[str | None, Query(max_length=100)] = None,
) -> dict[str, Any]:
    """The organisation's workflows with their current steps, newest first by default
    (``key``: a part of the key, case-insensitively)."""
    query = (
        select(Workflow)
        .where(Workflow.organisation_id == caller.organisation_id, Workflow.deleted_at.is_(None))
        .options(selectinload(Workflow.steps))
    )
    if key:
        query = query.where(Workflow.key.icontains(key, autoescape=True))
    page = PageRequest(after, before, limit, order_direction, include_cursor)
    with database().session() as session:
        return keyset_page(
            session, query, sort=Workflow.created_at, row_id=Workflow.id, page=page, render=render
        )


@router.get("/{key}", response_model=Envelope[WorkflowAnswer], responses=NOT_FOUND)
def get_workflow(
    caller: CallerDep,
    key: KeyPath,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> dict[str, Any]:
    """The workflow with its current steps, or with version ``version``'s."""
    with database().session() as session:
        workflow = _found(session, caller.organisation_id, key)
        if version is None or version == workflow.version:
            return envelope(render(workflow))
        steps = _version_steps(session, workflow).get(version)
        if steps is None:
            raise NotFoundError(f"workflow {key!r} has no version {version}")
        return envelope(render(workflow, steps))


@router.get("/{key}/versions", response_model=Envelope[list[VersionAnswer]], responses=NOT_FOUND)
def list_versions(caller: CallerDep, key: KeyPath) -> dict[str, Any]:
    """Every version of the workflow with its steps, the newest first."""
    with database().session() as session:
        workflow = _found(session, caller.organisation_id, key)
        versions = _version_steps(session, workflow)
        return envelope(
            [
                VersionAnswer(
                    version=number,
                    current=number == workflow.version,
                    created_at=timestamp(steps[0].created_at),
                    steps=[_step(step) for step in steps],
                )
                for number, steps in sorted(versions.items(), reverse=True)
            ]
        )


def _version_steps(session: Session, workflow: Workflow) -> dict[int, list[WorkflowStep]]:
    versions: dict[int, list[WorkflowStep]] = defaultdict(list)
    for step in session.scalars(
        select(WorkflowStep)
        .where(
            WorkflowStep.organisation_id == workflow.organisation_id,
            WorkflowStep.workflow_id == workflow.id,
        )
        .order_by(WorkflowStep.version, WorkflowStep.position)
    ):
        versions[step.version].append(step)
    return versions


@router.put("/{key}", response_model=Envelope[WorkflowAnswer], responses=NOT_FOUND)
def replace_workflow(body: WorkflowBody, caller: CallerDep, key: KeyPath) -> dict[str, Any]:
    """Replace the workflow's fields and steps: its next version."""
    return _change(caller.organisation_id, key, _given(body, every=True))


@router.patch("/{key}", response_model=Envelope[WorkflowAnswer], responses=NOT_FOUND)
def patch_workflow(body: WorkflowChange, caller: CallerDep, key: KeyPath) -> dict[str, Any]:
    """Change the fields given (the steps copied when not given): the workflow's next version."""
    return _change(caller.organisation_id, key, _given(body))


def _change(organisation_id: uuid.UUID, key: str, given: dict[str, Any]) -> dict[str, Any]:
    args = _checked(UpdateWorkflowArgs, {**given, "key": key})
    with database().transaction() as session:
        ctx = ActionContext(session, organisation_id)
        workflow = find_workflow(ctx, args.key, lock=True)
        if workflow is None:
            raise NotFoundError(f"workflow {key!r} not found")
        return envelope(render(write_version(ctx, workflow, args)))


@router.delete("/{key}", response_model=Envelope[RemovedAnswer], responses=NOT_FOUND)
def delete_workflow(caller: CallerDep, key: KeyPath) -> dict[str, Any]:
    """Delete the workflow softly (see the module's docstring)."""
    with database().transaction() as session:
        ctx = ActionContext(session, caller.organisation_id)
        workflow = find_workflow(ctx, key, lock=True)
        if workflow is None:
            raise NotFoundError(f"workflow {key!r} not found")
        remove_workflow(ctx, workflow)
    return envelope(RemovedAnswer(acknowledged=True, status="deleted"))
