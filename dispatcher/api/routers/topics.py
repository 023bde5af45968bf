"""``/v2/topics``: topics (named sets of subscribers a trigger fans out to) and their
subscriptions, as Novu's SDKs call them.

A topic is named by its key in every path. Creating one is an upsert of its name unless
``failIfExists`` (then 422 naming ``key``: the SDKs retry a 409). Adding subscribers answers,
besides the subscriptions, ``meta: {totalCount, successful, failed}`` and an error for each
subscriber id the organisation does not have; removing them likewise. Novu's per-subscription
``name``, ``context`` and ``preferences`` are ignored.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import Field as PydanticField
from pydantic import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from dispatcher.actions.base import ActionContext, argument_errors
from dispatcher.actions.recipients import (
    CreateTopicArgs,
    SubscribeToTopicArgs,
    create_topic,
    subscribe_to_topic,
)
from dispatcher.api.errors import NotFoundError, UnprocessableError, wire_field
from dispatcher.api.keyset import CursorQueryDep, SortedCursorQueryDep, keyset_page
from dispatcher.api.rate_limit import CallerDep
from dispatcher.api.routers.subscribers import timestamp
from dispatcher.api.routing import NOT_FOUND, resource_router
from dispatcher.api.schemas import CursorPage, Envelope, Field, WireModel, envelope
from dispatcher.runtime.resources import database
from models import Subscriber, Topic, TopicSubscription

router: APIRouter = resource_router(prefix="/v2/topics", tag="Topics")

#: Subscriber ids per subscription change (Novu's limit).
MAX_SUBSCRIBERS_PER_CHANGE = 100


class TopicRequest(WireModel):
    key: str
    name: str | None = None


class TopicAnswer(WireModel):
    id: str = Field(alias="_id")
    key: str
    name: str
    created_at: str
    updated_at: str


class SubscriptionsRequest(WireModel):
    subscriber_ids: list[str] = PydanticField(min_length=1, max_length=MAX_SUBSCRIBERS_PER_CHANGE)


class SubscriberBrief(WireModel):
    id: str = Field(alias="_id")
    subscriber_id: str
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None


class TopicBrief(WireModel):
    id: str = Field(alias="_id")
    key: str
    name: str


class SubscriptionAnswer(WireModel):
    id: str = Field(alias="_id")
    identifier: str
    topic: TopicBrief
    subscriber: SubscriberBrief | None
    created_at: str
    updated_at: str


class ChangeMeta(WireModel):
    total_count: int
    successful: int
    failed: int


class ChangeError(WireModel):
    subscriber_id: str
    code: str
    message: str


class ChangeAnswer(WireModel):
    data: list[SubscriptionAnswer]
    meta: ChangeMeta
    errors: list[ChangeError]


class Acknowledged(WireModel):
    acknowledged: bool


TopicKeyPath = Annotated[str, Path(alias="topicKey", min_length=1, max_length=100)]


def render(topic: Topic) -> TopicAnswer:
    return TopicAnswer(
        _id=str(topic.id), key=topic.key, name=topic.name,
        created_at=timestamp(topic.created_at), updated_at=timestamp(topic.updated_at),
    )  # fmt: skip


def find_topic(session: Session, organisation_id: uuid.UUID, key: str) -> Topic:
    """The organisation's topic; another organisation's reads exactly like a missing one."""
    topic = session.scalars(
        select(Topic).where(Topic.organisation_id == organisation_id, Topic.key == key)
    ).one_or_none()
    if topic is None:
        raise NotFoundError(f"topic {key!r} not found")
    return topic


@router.post("", status_code=201, response_model=Envelope[TopicAnswer])
def create_or_update_topic(
    body: TopicRequest,
    caller: CallerDep,
    fail_if_exists: Annotated[bool, Query(alias="failIfExists")] = False,
) -> dict[str, Any]:
    """Create a topic, or rename an existing one (unless ``failIfExists``)."""
    try:
        args = CreateTopicArgs.model_validate({"key": body.key, "name": body.name or body.key})
    except ValidationError as exc:
        errors: dict[str, list[str]] = {}
        for item in argument_errors(exc):
            errors.setdefault(wire_field(item["field"]), []).append(item["message"])
        raise UnprocessableError(errors) from None
    with database().transaction() as session:
        existing = session.scalars(
            select(Topic).where(
                Topic.organisation_id == caller.organisation_id, Topic.key == args.key
            )
        ).one_or_none()
        if existing is not None:
            if fail_if_exists:
                raise UnprocessableError({"key": ["a topic with this key exists"]})
            if body.name:
                existing.name = args.name
                session.flush()
            return envelope(render(existing))
        create_topic(ActionContext(session, caller.organisation_id), args)
        return envelope(render(find_topic(session, caller.organisation_id, args.key)))


@router.get("", response_model=CursorPage[TopicAnswer])
def list_topics(
    *,
    caller: CallerDep,
    cursor: SortedCursorQueryDep,
    key: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """The organisation's topics; ``key`` and ``name`` match a part, case-insensitively."""
    query = select(Topic).where(Topic.organisation_id == caller.organisation_id)
    if key:
        query = query.where(Topic.key.icontains(key, autoescape=True))
    if name:
        query = query.where(Topic.name.icontains(name, autoescape=True))
    sort = Topic.created_at if cursor.order_by == "createdAt" else Topic.updated_at
    with database().session() as session:
        return keyset_page(
            session, query, sort=sort, row_id=Topic.id, page=cursor.page(), render=render
        )


@router.get("/{topicKey}", response_model=Envelope[TopicAnswer], responses=NOT_FOUND)
def get_topic(caller: CallerDep, topic_key: TopicKeyPath) -> dict[str, Any]:
    with database().session() as session:
        return envelope(render(find_topic(session, caller.organisation_id, topic_key)))


@router.delete("/{topicKey}", response_model=Envelope[Acknowledged], responses=NOT_FOUND)
def delete_topic(caller: CallerDep, topic_key: TopicKeyPath) -> dict[str, Any]:
    """Delete the topic and its subscriptions (the subscribers stay)."""
    with database().transaction() as session:
        topic = find_topic(session, caller.organisation_id, topic_key)
        session.execute(
            delete(Topic).where(
                Topic.id == topic.id, Topic.organisation_id == caller.organisation_id
            )
        )
    return envelope(Acknowledged(acknowledged=True))


def _subscribers(
    session: Session, organisation_id: uuid.UUID, external_ids: list[str]
) -> dict[str, Subscriber]:
    rows = session.scalars(
        select(Subscriber).where(
            Subscriber.organisation_id == organisation_id, Subscriber.external_id.in_(external_ids)
        )
    )
    return {row.external_id: row for row in rows}


def _subscriptions(
    session: Session, topic: Topic, subscriber_ids: list[uuid.UUID] | None = None
) -> list[tuple[TopicSubscription, Subscriber]]:
    query = (
        select(TopicSubscription, Subscriber)
        .join(Subscriber, Subscriber.id == TopicSubscription.subscriber_id)
        .where(
            TopicSubscription.topic_id == topic.id,
            TopicSubscription.organisation_id == topic.organisation_id,
        )
    )
    if subscriber_ids is not None:
        query = query.where(TopicSubscription.subscriber_id.in_(subscriber_ids))
    return [(row[0], row[1]) for row in session.execute(query)]


def render_subscription(
    topic: Topic, subscription: TopicSubscription, subscriber: Subscriber
) -> SubscriptionAnswer:
    return SubscriptionAnswer(
        _id=str(subscription.id),
        identifier=f"{topic.key}:{subscriber.external_id}",
        topic=TopicBrief(_id=str(topic.id), key=topic.key, name=topic.name),
        subscriber=SubscriberBrief(
            _id=str(subscriber.id),
            subscriber_id=subscriber.external_id,
            first_name=subscriber.first_name,
            last_name=subscriber.last_name,
            email=subscriber.email,
        ),
        created_at=timestamp(subscription.created_at),
        updated_at=timestamp(subscription.created_at),
    )


def _missing(wanted: list[str], found: dict[str, Subscriber]) -> list[ChangeError]:
    return [
        ChangeError(
            subscriber_id=external_id,
            code="SUBSCRIBER_NOT_FOUND",
            message=f"no subscriber {external_id!r} in this organisation",
        )
        for external_id in wanted
        if external_id not in found
    ]


@router.post(
    "/{topicKey}/subscriptions", status_code=201, response_model=ChangeAnswer, responses=NOT_FOUND
)
def add_subscriptions(
    body: SubscriptionsRequest, caller: CallerDep, topic_key: TopicKeyPath
) -> dict[str, Any]:
    """Subscribe the subscribers given (those already subscribed stay as they are)."""
    wanted = list(dict.fromkeys(body.subscriber_ids))
    with database().transaction() as session:
        topic = find_topic(session, caller.organisation_id, topic_key)
        found = _subscribers(session, caller.organisation_id, wanted)
        if found:
            subscribe_to_topic(
                ActionContext(session, caller.organisation_id),
                SubscribeToTopicArgs(topic_id=topic.id, subscriber_ids=list(found)),
            )
        rows = _subscriptions(session, topic, [row.id for row in found.values()])
        answer = ChangeAnswer(
            data=[render_subscription(topic, *row) for row in rows],
            meta=ChangeMeta(total_count=len(wanted), successful=len(found),
                            failed=len(wanted) - len(found)),
            errors=_missing(wanted, found),
        )  # fmt: skip
    return answer.model_dump(mode="json", by_alias=True)


@router.delete("/{topicKey}/subscriptions", response_model=ChangeAnswer, responses=NOT_FOUND)
def remove_subscriptions(
    body: SubscriptionsRequest, caller: CallerDep, topic_key: TopicKeyPath
) -> dict[str, Any]:
    """Unsubscribe the subscribers given; answers the subscriptions removed."""
    wanted = list(dict.fromkeys(body.subscriber_ids))
    with database().transaction() as session:
        topic = find_topic(session, caller.organisation_id, topic_key)
        found = _subscribers(session, caller.organisation_id, wanted)
        rows = _subscriptions(session, topic, [row.id for row in found.values()])
        removed = [render_subscription(topic, *row) for row in rows]
        session.execute(
            delete(TopicSubscription).where(
                TopicSubscription.organisation_id == caller.organisation_id,
                TopicSubscription.id.in_([row[0].id for row in rows]),
            )
        )
        answer = ChangeAnswer(
            data=removed,
            meta=ChangeMeta(total_count=len(wanted), successful=len(found),
                            failed=len(wanted) - len(found)),
            errors=_missing(wanted, found),
        )  # fmt: skip
    return answer.model_dump(mode="json", by_alias=True)


@router.get(
    "/{topicKey}/subscriptions", response_model=CursorPage[SubscriptionAnswer], responses=NOT_FOUND
)
def list_subscriptions(
    *,
    caller: CallerDep,
    topic_key: TopicKeyPath,
    cursor: CursorQueryDep,
) -> dict[str, Any]:
    """The topic's subscriptions, newest first by default."""
    with database().session() as session:
        topic = find_topic(session, caller.organisation_id, topic_key)

        def render_row(subscription: TopicSubscription) -> SubscriptionAnswer:
            # At most a page of primary-key reads.
            subscriber = session.get(Subscriber, subscription.subscriber_id)
            assert subscriber is not None
            return render_subscription(topic, subscription, subscriber)

        query = select(TopicSubscription).where(
            TopicSubscription.organisation_id == caller.organisation_id,
            TopicSubscription.topic_id == topic.id,
        )
        return keyset_page(
            session, query, sort=TopicSubscription.created_at, row_id=TopicSubscription.id,
            page=cursor.page(), render=render_row,
        )  # fmt: skip
