"""Recipient actions: subscribers, topics, and per-workflow, per-channel preferences.

A subscriber is named everywhere by the application's own id for it, its ``external_id``
(Novu's ``subscriberId``): ``create_subscriber`` answers it, and every argument naming a
subscriber takes it, as ``trigger(to=...)`` does. The row's UUID is accepted too, for callers
that stored one, when no subscriber of the organisation has that text as its external id.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import EmailStr, Field, StringConstraints
from sqlalchemy import or_, select

from dispatcher.actions.base import ActionArgs, ActionContext, Ref, catalogue
from dispatcher.notifications.erasure import not_erased
from dispatcher.results import Err, ErrorCode, Ok, Result
from dispatcher.validation import Key, Name
from models import ChannelType, Preference, Subscriber, Topic, TopicSubscription, User, Workflow

Phone = Annotated[str, StringConstraints(pattern=r"^\+[1-9]\d{6,14}$")]

#: A subscriber's external id (or, failing that, its row's UUID).
SubscriberKey = Name


def _as_uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def resolve_subscribers(
    ctx: ActionContext, field: str, keys: Iterable[str]
) -> list[uuid.UUID] | Err:
    """The row ids of the subscribers named by ``keys``, in order; ``not_found`` names the rest.

    An external id wins over a row id that happens to be spelled the same.
    """
    wanted = list(dict.fromkeys(keys))
    row_ids = [parsed for parsed in map(_as_uuid, wanted) if parsed is not None]
    rows = ctx.session.execute(
        select(Subscriber.id, Subscriber.external_id).where(
            Subscriber.organisation_id == ctx.organisation_id,
            or_(Subscriber.external_id.in_(wanted), Subscriber.id.in_(row_ids)),
            not_erased(),
        )
    ).all()
    by_external_id = {row.external_id: row.id for row in rows}
    found_row_ids = {row.id for row in rows}
    resolved: list[uuid.UUID] = []
    missing: list[str] = []
    for key in wanted:
        row_id = by_external_id.get(key)
        if row_id is None and _as_uuid(key) in found_row_ids:
            row_id = _as_uuid(key)
        if row_id is None:
            missing.append(key)
        else:
            resolved.append(row_id)
    if missing:
        # Another organisation's subscriber reads exactly like a missing one.
        return Err(
            ErrorCode.NOT_FOUND,
            f"{field}: no subscriber {', '.join(map(repr, missing))} in this organisation",
            {"field": field, "table": Subscriber.__tablename__, "missing": missing},
        )
    return resolved


def resolve_subscriber(ctx: ActionContext, field: str, key: str) -> uuid.UUID | Err:
    resolved = resolve_subscribers(ctx, field, [key])
    return resolved if isinstance(resolved, Err) else resolved[0]


class CreateSubscriberArgs(ActionArgs):
    external_id: Name
    first_name: Name | None = None
    last_name: Name | None = None
    email: EmailStr | None = None
    #: E.164, with the leading ``+``.
    phone: Phone | None = None
    locale: Annotated[str, StringConstraints(max_length=35)] | None = None
    timezone: Annotated[str, StringConstraints(max_length=64)] | None = None
    channels: dict[ChannelType, dict[str, Any]] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)
    user_id: Annotated[uuid.UUID | None, Ref(User)] = None


@catalogue.action("create_subscriber", CreateSubscriberArgs)
def create_subscriber(ctx: ActionContext, args: CreateSubscriberArgs) -> Result:
    """Create a subscriber: someone notifications go to, with per-channel addresses."""
    subscriber = ctx.add(
        Subscriber(
            external_id=args.external_id,
            first_name=args.first_name,
            last_name=args.last_name,
            email=args.email,
            phone=args.phone,
            locale=args.locale,
            timezone=args.timezone,
            channels=dict(args.channels),
            data=args.data,
            user_id=args.user_id,
            meta=args.meta,
        )
    )
    return Ok(subscriber.external_id)


class CreateTopicArgs(ActionArgs):
    key: Key
    name: Name
    #: External ids (see the module's docstring).
    subscriber_ids: list[SubscriberKey] = Field(default_factory=list)


@catalogue.action("create_topic", CreateTopicArgs)
def create_topic(ctx: ActionContext, args: CreateTopicArgs) -> Result:
    """Create a topic (a named set of subscribers a trigger can fan out to)."""
    members = resolve_subscribers(ctx, "subscriber_ids", args.subscriber_ids)
    if isinstance(members, Err):
        return members
    topic = ctx.add(Topic(key=args.key, name=args.name, meta=args.meta))
    for subscriber_id in dict.fromkeys(members):
        ctx.add(TopicSubscription(topic_id=topic.id, subscriber_id=subscriber_id))
    return Ok(str(topic.id))


class SubscribeToTopicArgs(ActionArgs):
    topic_id: Annotated[uuid.UUID, Ref(Topic)]
    subscriber_ids: list[SubscriberKey] = Field(min_length=1)


@catalogue.action("subscribe_to_topic", SubscribeToTopicArgs)
def subscribe_to_topic(ctx: ActionContext, args: SubscribeToTopicArgs) -> Result:
    """Add subscribers to a topic; ones already in it are left as they are."""
    members = resolve_subscribers(ctx, "subscriber_ids", args.subscriber_ids)
    if isinstance(members, Err):
        return members
    present = set(
        ctx.session.scalars(
            select(TopicSubscription.subscriber_id).where(
                TopicSubscription.topic_id == args.topic_id,
                TopicSubscription.organisation_id == ctx.organisation_id,
            )
        )
    )
    added = [item for item in dict.fromkeys(members) if item not in present]
    for subscriber_id in added:
        ctx.add(TopicSubscription(topic_id=args.topic_id, subscriber_id=subscriber_id))
    return Ok(len(added))


class SetPreferenceArgs(ActionArgs):
    subscriber_id: SubscriberKey
    #: ``None``: every workflow.
    workflow_id: Annotated[uuid.UUID | None, Ref(Workflow)] = None
    #: ``None``: every channel.
    channel_type: ChannelType | None = None
    enabled: bool


@catalogue.action("set_preference", SetPreferenceArgs)
def set_preference(ctx: ActionContext, args: SetPreferenceArgs) -> Result:
    """Opt a subscriber in or out of a workflow and/or channel."""
    subscriber_id = resolve_subscriber(ctx, "subscriber_id", args.subscriber_id)
    if isinstance(subscriber_id, Err):
        return subscriber_id
    channel = ChannelType(args.channel_type) if args.channel_type else None
    preference = ctx.session.scalars(
        select(Preference).where(
            Preference.organisation_id == ctx.organisation_id,
            Preference.subscriber_id == subscriber_id,
            Preference.workflow_id.is_(None)
            if args.workflow_id is None
            else Preference.workflow_id == args.workflow_id,
            Preference.channel_type.is_(None)
            if channel is None
            else Preference.channel_type == channel,
        )
    ).one_or_none()
    if preference is None:
        preference = ctx.add(
            Preference(
                subscriber_id=subscriber_id,
                workflow_id=args.workflow_id,
                channel_type=channel,
                enabled=args.enabled,
                meta=args.meta,
            )
        )
    else:
        preference.enabled = args.enabled
        preference.meta = {**preference.meta, **args.meta}
    return Ok(str(preference.id))
