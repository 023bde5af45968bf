"""``POST /v1/preview`` (ours, not Novu's): one workflow step rendered for a subscriber and a
sample payload, sending nothing and writing nothing (:mod:`dispatcher.notifications.preview`).

The subscriber is a stored one (``subscriberId``) or given inline (``subscriber``); a template
that does not render answers 422 naming the step, the field and the template line.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import EmailStr, Field, ValidationError

from dispatcher.api.errors import NotFoundError, UnprocessableError
from dispatcher.api.rate_limit import CallerDep
from dispatcher.api.routing import NOT_FOUND, resource_router
from dispatcher.api.schemas import Envelope, WireModel, envelope
from dispatcher.notifications.events import InlineSubscriber
from dispatcher.notifications.preview import PreviewError, preview

router: APIRouter = resource_router(prefix="/v1/preview", tag="Preview")


class PreviewSubscriber(WireModel):
    subscriber_id: Annotated[str, Field(min_length=1, max_length=200)]
    email: EmailStr | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    locale: str | None = None
    timezone: str | None = None
    data: dict[str, Any] | None = None


class PreviewRequest(WireModel):
    #: The workflow's key (its trigger identifier).
    workflow: Annotated[str, Field(min_length=1, max_length=100)]
    #: The step's position in the workflow, from 0.
    step: Annotated[int, Field(ge=0, le=1000)] = 0
    subscriber_id: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    subscriber: PreviewSubscriber | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    actor: dict[str, Any] | None = None


class TemplateWarning(WireModel):
    field: str
    line: int | None
    message: str


class PreviewAnswer(WireModel):
    step: int
    kind: str
    channel: str | None
    #: The translation used (``pt``), or null for the step's default templates.
    locale: str | None
    #: ``subject``, ``body``, ``html``, ``title``: those the step has, rendered.
    content: dict[str, str]
    conditions_hold: bool
    #: A translation that does not render: the default text (what a worker sends) is shown.
    warnings: list[TemplateWarning]


@router.post("", response_model=Envelope[PreviewAnswer], responses=NOT_FOUND)
def preview_step(body: PreviewRequest, caller: CallerDep) -> dict[str, Any]:
    """Render one step of a workflow for a subscriber and a sample payload; nothing is sent
    or written."""
    inline: InlineSubscriber | None = None
    if body.subscriber is not None:
        try:
            inline = InlineSubscriber.model_validate(body.subscriber.model_dump(exclude_none=True))
        except ValidationError as exc:
            raise UnprocessableError(
                {"subscriber." + ".".join(map(str, e["loc"])): [e["msg"]] for e in exc.errors()}
            ) from None
    elif body.subscriber_id is None:
        raise UnprocessableError({"subscriberId": ["give subscriberId or subscriber"]})
    try:
        shown = preview(
            caller.organisation_id, body.workflow, body.step, body.payload,
            subscriber_id=body.subscriber_id, subscriber=inline, actor=body.actor,
        )  # fmt: skip
    except PreviewError as exc:
        if exc.field in {"workflow", "subscriberId"}:
            raise NotFoundError(exc.message) from None
        raise UnprocessableError({exc.field: [str(exc.message)]}) from None
    return envelope(
        PreviewAnswer(
            step=shown.step, kind=shown.kind, channel=shown.channel, locale=shown.locale,
            content=shown.content, conditions_hold=shown.conditions_hold,
            warnings=[TemplateWarning(field=w.field, line=w.line, message=w.message)
                      for w in shown.warnings],
        )
    )  # fmt: skip
