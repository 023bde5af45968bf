"""Preview: one workflow step rendered for a subscriber and a sample payload, sending nothing
and writing nothing.

A fetch step is rendered, not made: its preview shows the method, URL and body it would send.
The steps after one render with the sample payload as given, and say in a warning that the
fetch's answer is not merged (the caller puts what it would answer in the sample payload).

The step is rendered the way a worker renders it (the same sandbox, the same context, the
subscriber's translation, the email layout), so what the preview shows is what would be sent.
Unlike a worker, the preview reports a translation that does not render (as a warning, beside
the default text a worker would fall back to), and a default template that does not render is
an error naming the step, the field and the template line. The subscriber is a stored one (by
external id) or given inline; either way only reads run, in a transaction that is rolled back.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from jinja2 import TemplateSyntaxError
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from dispatcher.notifications.digest_steps import render_key
from dispatcher.notifications.events import InlineSubscriber
from dispatcher.runtime.resources import database
from dispatcher.sending.conditions import all_hold
from dispatcher.sending.fetch import FetchConfig, render_request
from dispatcher.sending.layouts import choose_layout, finish_email, load_layouts
from dispatcher.sending.plan import (
    SUBSCRIBER_COLUMNS,
    TEMPLATE_FIELDS,
    SubscriberRow,
    subscriber_context,
)
from dispatcher.sending.rendering import RenderError, TemplateRenderer
from dispatcher.sending.translations import localized_templates, translation_tag
from models import ChannelType, StepKind, Subscriber, Workflow
from models.ids import new_id

_TEMPLATE_FILE = "<template>"
_CHANNEL_KINDS = frozenset(StepKind(channel.value) for channel in ChannelType)


class PreviewError(ValueError):
    """A preview that cannot be made: ``field`` names what is wrong (``workflow``, ``step``,
    ``subscriberId``), or, for a template, ``steps.N.template.FIELD``."""

    def __init__(self, field: str, message: str, *, line: int | None = None) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.line = line


@dataclass(frozen=True)
class TemplateProblem:
    field: str
    line: int | None
    message: str


@dataclass(frozen=True)
class StepPreview:
    step: int
    kind: str
    #: The channel a channel step sends on; ``None`` for delay, digest, throttle and fetch steps.
    channel: str | None
    #: The locale whose translation was used, or ``None`` for the step's default templates.
    locale: str | None
    #: Rendered ``subject``, ``body``, ``html``, ``title`` (those the step has).
    content: dict[str, str]
    #: Whether the step's conditions hold for this subscriber and payload.
    conditions_hold: bool
    warnings: list[TemplateProblem] = field(default_factory=list)


@dataclass(frozen=True)
class InlineSubscriberRow:
    """A subscriber given in the request, shaped as the rows a worker renders for."""

    external_id: str
    id: uuid.UUID = field(default_factory=new_id)
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    locale: str | None = None
    timezone: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    channels: dict[str, Any] = field(default_factory=dict)


def template_line(error: BaseException) -> int | None:
    """The template line a render error happened on, from Jinja's rewritten traceback (the
    original error is kept as the render error's context)."""
    for candidate in (error.__context__, error):
        if isinstance(candidate, TemplateSyntaxError):
            return candidate.lineno
        if candidate is None:
            continue
        lines: list[int] = []
        trace: TracebackType | None = candidate.__traceback__
        while trace is not None:
            if trace.tb_frame.f_code.co_filename == _TEMPLATE_FILE:
                lines.append(trace.tb_lineno)
            trace = trace.tb_next
        if lines:
            return lines[-1]
    return None


def preview_step(
    session: Session,
    organisation: uuid.UUID,
    *,
    workflow_key: str,
    step: int,
    payload: Mapping[str, Any],
    subscriber_id: str | None = None,
    subscriber: InlineSubscriberRow | None = None,
    actor: Mapping[str, Any] | None = None,
    renderer: TemplateRenderer | None = None,
) -> StepPreview:
    """Render step ``step`` (its position, from 0) of ``workflow_key`` for a stored subscriber
    (``subscriber_id``, the external id) or an inline one. Reads only; raises
    :class:`PreviewError`."""
    workflow = session.scalars(
        select(Workflow)
        .where(Workflow.organisation_id == organisation, Workflow.key == workflow_key)
        .options(selectinload(Workflow.steps))
    ).one_or_none()
    if workflow is None:
        raise PreviewError("workflow", f"workflow {workflow_key!r} does not exist")
    steps = list(workflow.steps)
    if not 0 <= step < len(steps):
        raise PreviewError("step", f"the workflow has steps 0 to {len(steps) - 1}")
    chosen = steps[step]
    recipient = _subscriber(session, organisation, subscriber_id, subscriber)
    context: dict[str, Any] = {
        "payload": dict(payload),
        "subscriber": subscriber_context(recipient),
        "actor": dict(actor or {}),
    }
    digest = next((earlier for earlier in steps[:step] if earlier.kind is StepKind.DIGEST), None)
    if digest is not None:
        source = digest.config.get("key")
        key = render_key(source, context)[0] if source else None
        context["digest"] = {"events": [dict(payload)], "count": 1, "key": key or ""}
    holds = all_hold(chosen.conditions, context)
    renderer = renderer or TemplateRenderer()
    if chosen.kind is StepKind.FETCH:
        return _preview_fetch(renderer, chosen.config, context, step, holds)
    if chosen.kind not in _CHANNEL_KINDS:
        return StepPreview(step, chosen.kind.value, None, None, {}, holds)
    unmade = [
        TemplateProblem(
            f"steps.{earlier.position}", None,
            f"step {earlier.position} is a fetch, which a preview does not make: its answer is "
            "not merged (give the fields it would answer in the payload)",
        )
        for earlier in steps[:step]
        if earlier.kind is StepKind.FETCH
    ]  # fmt: skip
    templates, default = localized_templates(
        chosen.template, chosen.config, recipient.locale, TEMPLATE_FIELDS
    )
    warnings: list[TemplateProblem] = unmade
    locale = translation_tag(chosen.config, recipient.locale) if templates is not default else None
    content: dict[str, str] = {}
    if templates is not default:
        try:
            content = _render(renderer, templates, context, step, f"translations.{locale}")
        except PreviewError as exc:
            warnings.append(TemplateProblem(exc.field, exc.line, exc.message))
            templates, locale = default, None
    if templates is default:
        content = _render(renderer, default, context, step, "template")
    if chosen.kind is StepKind.EMAIL:
        layouts = load_layouts(session, [organisation]).get(organisation, [])
        content = finish_email(renderer, choose_layout(layouts, chosen.config), content, context)
    return StepPreview(step, chosen.kind.value, chosen.kind.value, locale, content, holds, warnings)


def _preview_fetch(
    renderer: TemplateRenderer,
    config: Mapping[str, Any],
    context: Mapping[str, Any],
    step: int,
    holds: bool,
) -> StepPreview:
    """The request a fetch step would make, rendered; not made (a preview sends nothing)."""
    try:
        request = render_request(FetchConfig.model_validate(config), renderer, context)
    except ValidationError:
        raise PreviewError(
            f"steps.{step}.config", "the fetch step's stored config is not valid"
        ) from None
    except RenderError as exc:
        where, _, problem = str(exc).partition(": ")
        raise PreviewError(f"steps.{step}.{where}", f"step {step}, {where}: {problem}") from None
    content = {"method": request.method, "url": request.url}
    if request.body is not None:
        content["body"] = request.body.decode()
    note = TemplateProblem(
        f"steps.{step}", None, "a preview does not make the request; the URL guard checks it "
        "when a worker does",
    )  # fmt: skip
    return StepPreview(step, StepKind.FETCH.value, None, None, content, holds, [note])


def _render(
    renderer: TemplateRenderer,
    templates: Mapping[str, str],
    context: Mapping[str, Any],
    step: int,
    where: str,
) -> dict[str, str]:
    content: dict[str, str] = {}
    for name, source in templates.items():
        try:
            content[name] = renderer.render(source, context)
        except RenderError as exc:
            line = template_line(exc)
            at = f" on line {line}" if line is not None else ""
            raise PreviewError(
                f"steps.{step}.{where}.{name}", f"step {step}, {name}{at}: {exc}", line=line
            ) from None
    return content


def _subscriber(
    session: Session,
    organisation: uuid.UUID,
    subscriber_id: str | None,
    inline: InlineSubscriberRow | None,
) -> SubscriberRow:
    if inline is not None:
        return inline
    if subscriber_id is None:
        raise PreviewError("subscriberId", "give a subscriber id or an inline subscriber")
    row: SubscriberRow | None = session.execute(
        select(*SUBSCRIBER_COLUMNS).where(
            Subscriber.organisation_id == organisation, Subscriber.external_id == subscriber_id
        )
    ).one_or_none()
    if row is None:
        raise PreviewError("subscriberId", f"no subscriber {subscriber_id!r} in this organisation")
    return row


def inline_row(subscriber: InlineSubscriber) -> InlineSubscriberRow:
    """An inline subscriber of a trigger's shape, as the row a preview renders for."""
    return InlineSubscriberRow(
        external_id=subscriber.subscriber_id,
        first_name=subscriber.first_name,
        last_name=subscriber.last_name,
        email=str(subscriber.email) if subscriber.email else None,
        phone=subscriber.phone,
        locale=subscriber.locale,
        timezone=subscriber.timezone,
        data=dict(subscriber.data or {}),
        channels=dict(subscriber.channels or {}),
    )


def preview(
    organisation: uuid.UUID,
    workflow_key: str,
    step: int,
    payload: Mapping[str, Any],
    *,
    subscriber_id: str | None = None,
    subscriber: InlineSubscriber | None = None,
    actor: Mapping[str, Any] | None = None,
) -> StepPreview:
    """:func:`preview_step` in a session of its own that is rolled back, never committed."""
    with database().session() as session:
        try:
            return preview_step(
                session, organisation, workflow_key=workflow_key, step=step, payload=payload,
                subscriber_id=subscriber_id,
                subscriber=inline_row(subscriber) if subscriber is not None else None,
                actor=actor,
            )  # fmt: skip
        finally:
            session.rollback()
