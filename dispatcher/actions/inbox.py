"""In-app inbox actions: list a subscriber's messages, and mark them seen, read or archived.

Pages are newest first; ``before`` is the id of the last message of the previous page (a keyset
cursor, so messages arriving meanwhile never shift a page). A message id that is not one of this
subscriber's messages in this organisation is ``not_found``, exactly like a missing one. The
subscriber is named by its external id, as everywhere (see :mod:`dispatcher.actions.recipients`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field
from sqlalchemy import ColumnElement, and_, or_, select

from dispatcher.actions.base import ActionArgs, ActionContext, Ref, catalogue
from dispatcher.actions.recipients import SubscriberKey, resolve_subscriber
from dispatcher.notifications.enqueue import publish_after_commit
from dispatcher.results import Err, ErrorCode, Ok, Result
from dispatcher.sending.webhook_events import Change, emit, inbox_marks
from models import InboxMessage
from models.types import utcnow

#: ``None`` lists the inbox proper: every message not archived.
InboxStatus = Literal["unseen", "unread", "archived", "all"]
Mark = Literal["seen", "read", "unread", "archived", "unarchived"]

MAX_MARKED = 500


class ListInboxArgs(ActionArgs):
    subscriber_id: SubscriberKey
    #: ``unseen``/``unread`` look at messages not archived; ``all`` includes archived ones.
    status: InboxStatus | None = None
    limit: int = Field(default=20, ge=1, le=100)
    #: The id of the last message of the previous page.
    before: Annotated[uuid.UUID | None, Ref(InboxMessage)] = None


def _status_filter(status: InboxStatus | None) -> list[ColumnElement[bool]]:
    not_archived = InboxMessage.archived_at.is_(None)
    if status == "unseen":
        return [not_archived, InboxMessage.seen_at.is_(None)]
    if status == "unread":
        return [not_archived, InboxMessage.read_at.is_(None)]
    if status == "archived":
        return [InboxMessage.archived_at.is_not(None)]
    if status == "all":
        return []
    return [not_archived]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def inbox_item(message: InboxMessage) -> dict[str, Any]:
    """The JSON form of one message, as ``list_inbox`` returns it."""
    return {
        "id": str(message.id),
        "title": message.title,
        "body": message.body,
        "data": message.data,
        "created_at": _iso(message.created_at),
        "seen_at": _iso(message.seen_at),
        "read_at": _iso(message.read_at),
        "archived_at": _iso(message.archived_at),
    }


def _not_found(field: str, missing: list[uuid.UUID]) -> Err:
    # Another subscriber's message reads exactly like a missing one.
    ids = [str(item) for item in missing]
    return Err(
        ErrorCode.NOT_FOUND,
        f"{field}: no message of this subscriber with id {', '.join(ids)}",
        {"field": field, "table": InboxMessage.__tablename__, "missing": ids},
    )


def _subscriber_messages(ctx: ActionContext, subscriber_id: uuid.UUID) -> ColumnElement[bool]:
    return and_(
        InboxMessage.organisation_id == ctx.organisation_id,
        InboxMessage.subscriber_id == subscriber_id,
    )


@catalogue.action("list_inbox", ListInboxArgs)
def list_inbox(ctx: ActionContext, args: ListInboxArgs) -> Result:
    """List a subscriber's in-app messages, newest first (filter by status, page with before)."""
    subscriber_id = resolve_subscriber(ctx, "subscriber_id", args.subscriber_id)
    if isinstance(subscriber_id, Err):
        return subscriber_id
    query = (
        select(InboxMessage)
        .where(_subscriber_messages(ctx, subscriber_id), *_status_filter(args.status))
        .order_by(InboxMessage.created_at.desc(), InboxMessage.id.desc())
        .limit(args.limit)
    )
    if args.before is not None:
        cursor = ctx.session.scalars(
            select(InboxMessage).where(
                _subscriber_messages(ctx, subscriber_id), InboxMessage.id == args.before
            )
        ).one_or_none()
        if cursor is None:
            return _not_found("before", [args.before])
        query = query.where(
            or_(
                InboxMessage.created_at < cursor.created_at,
                and_(InboxMessage.created_at == cursor.created_at, InboxMessage.id < cursor.id),
            )
        )
    return Ok([inbox_item(message) for message in ctx.session.scalars(query)])


class MarkInboxArgs(ActionArgs):
    subscriber_id: SubscriberKey
    message_ids: Annotated[list[uuid.UUID], Ref(InboxMessage)] = Field(
        min_length=1, max_length=MAX_MARKED
    )
    # ``as`` is a Python keyword; the producer forwards validated arguments by field name.
    as_: Mark = Field(validation_alias=AliasChoices("as", "as_"))


def _apply(message: InboxMessage, mark: Mark, now: datetime) -> bool:
    """Change one message's state; ``True`` when something changed."""
    before = (message.seen_at, message.read_at, message.archived_at)
    if mark in ("seen", "read"):
        message.seen_at = message.seen_at or now
    if mark == "read":
        message.read_at = message.read_at or now
    elif mark == "unread":
        message.read_at = None
    elif mark == "archived":
        message.archived_at = message.archived_at or now
    elif mark == "unarchived":
        message.archived_at = None
    return (message.seen_at, message.read_at, message.archived_at) != before


@catalogue.action("mark_inbox", MarkInboxArgs)
def mark_inbox(ctx: ActionContext, args: MarkInboxArgs) -> Result:
    """Mark a subscriber's messages seen, read (and seen), unread, archived or unarchived."""
    subscriber_id = resolve_subscriber(ctx, "subscriber_id", args.subscriber_id)
    if isinstance(subscriber_id, Err):
        return subscriber_id
    wanted = list(dict.fromkeys(args.message_ids))
    messages = ctx.session.scalars(
        select(InboxMessage)
        .where(_subscriber_messages(ctx, subscriber_id), InboxMessage.id.in_(wanted))
        .with_for_update()
    ).all()
    found = {message.id for message in messages}
    missing = [message_id for message_id in wanted if message_id not in found]
    if missing:
        return _not_found("message_ids", missing)
    now = utcnow()
    changed = 0
    marks: list[Change] = []
    for message in messages:
        was = (message.seen_at is not None, message.read_at is not None)
        if _apply(message, args.as_, now):
            message.updated_at = now
            changed += 1
            marks += inbox_marks(
                ctx.organisation_id, message.delivery_id, was=was,
                now=(message.seen_at is not None, message.read_at is not None),
            )  # fmt: skip
    # In the action's transaction; to the broker after its commit.
    publish_after_commit(ctx.session, emit(ctx.session, marks, now))
    return Ok(changed)
