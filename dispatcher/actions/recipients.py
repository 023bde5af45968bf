"""Recipient actions: subscribers, topics, and per-workflow, per-channel preferences."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import EmailStr, Field, StringConstraints
from sqlalchemy import select

from dispatcher.actions.base import ActionArgs, ActionContext, Ref, catalogue
from dispatcher.results import Ok, Result
from dispatcher.validation import Key, Name
from models import ChannelType, Preference, Subscriber, Topic, TopicSubscription, User, Workflow

Phone = Annotated[str, StringConstraints(pattern=r"^\+[1-9]\d{6,14}$")]


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
    return Ok(str(subscriber.id))


class CreateTopicArgs(ActionArgs):
    key: Key
    name: Name
    subscriber_ids: Annotated[list[uuid.UUID], Ref(Subscriber)] = Field(default_factory=list)


@catalogue.action("create_topic", CreateTopicArgs)
def create_topic(ctx: ActionContext, args: CreateTopicArgs) -> Result:
    """Create a topic (a named set of subscribers a trigger can fan out to)."""
    topic = ctx.add(Topic(key=args.key, name=args.name, meta=args.meta))
    for subscriber_id in dict.fromkeys(args.subscriber_ids):
        ctx.add(TopicSubscription(topic_id=topic.id, subscriber_id=subscriber_id))
    return Ok(str(topic.id))


class SubscribeToTopicArgs(ActionArgs):
    topic_id: Annotated[uuid.UUID, Ref(Topic)]
    subscriber_ids: Annotated[list[uuid.UUID], Ref(Subscriber)] = Field(min_length=1)


@catalogue.action("subscribe_to_topic", SubscribeToTopicArgs)
def subscribe_to_topic(ctx: ActionContext, args: SubscribeToTopicArgs) -> Result:
    """Add subscribers to a topic; ones already in it are left as they are."""
    present = set(
        ctx.session.scalars(
            select(TopicSubscription.subscriber_id).where(
                TopicSubscription.topic_id == args.topic_id,
                TopicSubscription.organisation_id == ctx.organisation_id,
            )
        )
    )
    added = [item for item in dict.fromkeys(args.subscriber_ids) if item not in present]
    for subscriber_id in added:
        ctx.add(TopicSubscription(topic_id=args.topic_id, subscriber_id=subscriber_id))
    return Ok(len(added))


class SetPreferenceArgs(ActionArgs):
    subscriber_id: Annotated[uuid.UUID, Ref(Subscriber)]
    #: ``None``: every workflow.
    workflow_id: Annotated[uuid.UUID | None, Ref(Workflow)] = None
    #: ``None``: every channel.
    channel_type: ChannelType | None = None
    enabled: bool


@catalogue.action("set_preference", SetPreferenceArgs)
def set_preference(ctx: ActionContext, args: SetPreferenceArgs) -> Result:
    """Opt a subscriber in or out of a workflow and/or channel."""
    channel = ChannelType(args.channel_type) if args.channel_type else None
    preference = ctx.session.scalars(
        select(Preference).where(
            Preference.organisation_id == ctx.organisation_id,
            Preference.subscriber_id == args.subscriber_id,
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
                subscriber_id=args.subscriber_id,
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
