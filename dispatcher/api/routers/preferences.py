"""``/v2/subscribers/{subscriberId}/preferences``: a subscriber's opt-ins and opt-outs, global
and per workflow, per channel, in Novu's shape.

What is shown is what the sender applies (:func:`~dispatcher.sending.plan.opted_out`: the most
specific preference wins). Critical workflows ignore opt-outs, so they are shown with every
channel on, listed only when ``criticality`` asks for them (the SDKs send ``nonCritical``), and a
change of their preferences is refused (422 naming ``workflowId``). Novu's channels are
``email``, ``sms``, ``in_app``, ``chat`` and ``push``; this project's ``webhook`` channel has no
Novu name and is left out; Novu's ``schedule`` and ``context`` are ignored.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from dispatcher.actions.base import ActionContext
from dispatcher.actions.recipients import SetPreferenceArgs, set_preference
from dispatcher.api.errors import UnprocessableError
from dispatcher.api.rate_limit import CallerDep
from dispatcher.api.routers.subscribers import SubscriberIdPath, find_subscriber, timestamp
from dispatcher.api.routing import NOT_FOUND, resource_router
from dispatcher.api.schemas import Envelope, Field, WireModel, envelope
from dispatcher.runtime.resources import database
from dispatcher.sending.plan import opted_out
from models import ChannelType, Preference, Subscriber, Workflow

router: APIRouter = resource_router(prefix="/v2/subscribers", tag="Subscribers")

#: The channels Novu names, in its order.
NOVU_CHANNELS = (
    ChannelType.EMAIL, ChannelType.SMS, ChannelType.IN_APP, ChannelType.CHAT, ChannelType.PUSH,
)  # fmt: skip
#: No workflow has this id: preferences read against it are the global ones alone.
NO_WORKFLOW = uuid.UUID(int=0)


class PreferenceChannels(WireModel):
    email: bool | None = None
    sms: bool | None = None
    in_app: bool | None = Field(default=None, alias="in_app")
    chat: bool | None = None
    push: bool | None = None


class GlobalPreference(WireModel):
    enabled: bool
    channels: PreferenceChannels


class WorkflowInfo(WireModel):
    slug: str
    identifier: str
    name: str
    updated_at: str


class WorkflowPreference(WireModel):
    enabled: bool
    channels: PreferenceChannels
    overrides: list[dict[str, Any]] = Field(default_factory=list)
    workflow: WorkflowInfo


class PreferencesAnswer(WireModel):
    global_: GlobalPreference = Field(alias="global")
    workflows: list[WorkflowPreference]


class PatchPreferencesRequest(WireModel):
    channels: PreferenceChannels | None = None
    #: The workflow's key (Novu's identifier); absent: the global preferences.
    workflow_id: str | None = None


Criticality = Literal["critical", "nonCritical", "all"]


def _switch(preferences: list[Preference], workflow_id: uuid.UUID | None) -> bool:
    """Whether the workflow (or everything) is on as a whole: its own all-channel preference,
    else the global one."""
    ranked = {
        p.workflow_id is not None: p.enabled
        for p in preferences
        if p.channel_type is None and p.workflow_id in (None, workflow_id)
    }
    return ranked[max(ranked)] if ranked else True


def _channels(
    preferences: list[Preference], workflow_id: uuid.UUID, channels: list[ChannelType]
) -> PreferenceChannels:
    values = {
        channel.value: not opted_out(preferences, workflow_id, channel) for channel in channels
    }
    return PreferenceChannels.model_validate(values)


def preferences_of(
    session: Session, subscriber: Subscriber, criticality: Criticality
) -> PreferencesAnswer:
    preferences = list(
        session.scalars(
            select(Preference).where(
                Preference.organisation_id == subscriber.organisation_id,
                Preference.subscriber_id == subscriber.id,
            )
        )
    )
    workflows = session.scalars(
        select(Workflow)
        .options(selectinload(Workflow.steps))
        .where(Workflow.organisation_id == subscriber.organisation_id, Workflow.active.is_(True))
        .order_by(Workflow.key)
    ).all()
    answers = []
    for workflow in workflows:
        if (criticality == "critical") != workflow.critical and criticality != "all":
            continue
        used = {step.kind.value for step in workflow.steps}
        channels = [channel for channel in NOVU_CHANNELS if channel.value in used]
        info = WorkflowInfo(
            slug=workflow.key, identifier=workflow.key, name=workflow.name,
            updated_at=timestamp(workflow.updated_at),
        )  # fmt: skip
        if workflow.critical:
            on = PreferenceChannels.model_validate({channel.value: True for channel in channels})
            answers.append(WorkflowPreference(enabled=True, channels=on, workflow=info))
            continue
        answers.append(
            WorkflowPreference(
                enabled=_switch(preferences, workflow.id),
                channels=_channels(preferences, workflow.id, channels),
                workflow=info,
            )
        )
    overall = GlobalPreference(
        enabled=_switch(preferences, None),
        channels=_channels(preferences, NO_WORKFLOW, list(NOVU_CHANNELS)),
    )
    return PreferencesAnswer(global_=overall, workflows=answers)


@router.get(
    "/{subscriberId}/preferences", response_model=Envelope[PreferencesAnswer], responses=NOT_FOUND
)
def list_preferences(
    caller: CallerDep,
    subscriber_id: SubscriberIdPath,
    criticality: Criticality = "nonCritical",
) -> dict[str, Any]:
    with database().session() as session:
        subscriber = find_subscriber(session, caller.organisation_id, subscriber_id)
        return envelope(preferences_of(session, subscriber, criticality))


@router.patch(
    "/{subscriberId}/preferences", response_model=Envelope[PreferencesAnswer], responses=NOT_FOUND
)
def update_preferences(
    body: PatchPreferencesRequest,
    caller: CallerDep,
    subscriber_id: SubscriberIdPath,
    criticality: Annotated[Criticality, Query()] = "nonCritical",
) -> dict[str, Any]:
    """Turn channels on or off, globally or for one workflow; answers the preferences after."""
    with database().transaction() as session:
        subscriber = find_subscriber(session, caller.organisation_id, subscriber_id)
        workflow = find_workflow(session, caller.organisation_id, body.workflow_id)
        ctx = ActionContext(session, caller.organisation_id)
        channels = body.channels.model_dump(exclude_none=True) if body.channels else {}
        for channel, enabled in channels.items():
            set_preference(
                ctx,
                SetPreferenceArgs(
                    subscriber_id=subscriber.external_id,
                    workflow_id=workflow.id if workflow else None,
                    channel_type=ChannelType(channel),
                    enabled=enabled,
                ),
            )
        session.flush()
        return envelope(preferences_of(session, subscriber, criticality))


def find_workflow(session: Session, organisation_id: uuid.UUID, key: str | None) -> Workflow | None:
    """The organisation's workflow by key or row id (422 naming ``workflowId`` when missing or
    critical); ``None`` for no key."""
    if key is None:
        return None
    try:
        by_row_id = [Workflow.id == uuid.UUID(key)]
    except ValueError:
        by_row_id = []
    workflow = session.scalars(
        select(Workflow).where(
            Workflow.organisation_id == organisation_id, or_(Workflow.key == key, *by_row_id)
        )
    ).first()
    if workflow is None:
        raise UnprocessableError({"workflowId": ["no such workflow in this organisation"]})
    if workflow.critical:
        raise UnprocessableError(
            {"workflowId": ["a critical workflow is always delivered; it has no preferences"]}
        )
    return workflow
