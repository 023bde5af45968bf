"""The feed of one subscriber's in-app messages, in the shapes ``@novu/js`` reads.

Every query here starts from :func:`_own` (this organisation, this subscriber): a message id of
another subscriber reads exactly like a missing one (404). Pages are newest first, with the id
of the last message of the previous page as the cursor (``after``; a keyset, so messages
arriving meanwhile never shift a page). A snoozed message (``snoozed_until`` ahead) leaves the
feed and the counts until then, unless ``snoozed=true`` asks for the snoozed ones.

Marks follow what the client shows at once (its optimistic update): ``read`` also marks seen
and unarchives; ``archive`` also reads; ``unread`` and ``unarchive`` leave the archive.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, delete, false, func, or_, select, type_coerce, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, load_only

from dispatcher.api.errors import NotFoundError, UnprocessableError
from dispatcher.api.inbox.sessions import InboxCaller
from dispatcher.notifications.enqueue import publish_after_commit
from dispatcher.sending.webhook_events import emit, inbox_marks
from models import Delivery, InboxMessage, Notification, Subscriber, Workflow
from models.types import utcnow

Mark = Literal["read", "unread", "seen", "archive", "unarchive"]
ActionKind = Literal["primary", "secondary"]
SEVERITIES = ("high", "medium", "low", "none")
MAX_PAGE_SIZE = 100
MAX_OFFSET = 10_000
MAX_BULK = 500


@dataclass(frozen=True)
class Filter:
    """One of the client's filters; ``None`` is no condition."""

    read: bool | None = None
    seen: bool | None = None
    archived: bool | None = None
    snoozed: bool | None = None
    #: Groups of tags: a message has one of each group's tags, for every group.
    tags: tuple[tuple[str, ...], ...] = ()
    #: Of these workflows (keys).
    workflows: tuple[str, ...] = ()
    #: ``None`` or the severities asked for: every message here is ``none``.
    severity: tuple[str, ...] | None = None
    created_gte: datetime | None = None
    created_lte: datetime | None = None

    def wire(self) -> dict[str, Any]:
        tags: Any = list(self.tags[0]) if len(self.tags) == 1 else []
        if len(self.tags) > 1:
            tags = {"and": [{"or": list(group)} for group in self.tags]}
        found: dict[str, Any] = {"tags": tags}
        for name in ("read", "archived", "snoozed", "seen"):
            if getattr(self, name) is not None:
                found[name] = getattr(self, name)
        if self.severity is not None:
            found["severity"] = list(self.severity)
        return found


def _own(caller: InboxCaller) -> ColumnElement[bool]:
    return and_(
        InboxMessage.organisation_id == caller.organisation_id,
        InboxMessage.subscriber_id == caller.subscriber_id,
    )


def _conditions(chosen: Filter, now: datetime) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []

    def flag(value: bool | None, column: Any) -> None:
        if value is not None:
            found.append(column.is_not(None) if value else column.is_(None))

    flag(chosen.read, InboxMessage.read_at)
    flag(chosen.seen, InboxMessage.seen_at)
    flag(chosen.archived, InboxMessage.archived_at)
    if chosen.snoozed:
        found.append(InboxMessage.snoozed_until > now)
    else:
        found.append(or_(InboxMessage.snoozed_until.is_(None), InboxMessage.snoozed_until <= now))
    if chosen.tags:
        # JSONB containment (PostgreSQL): the tag filter is not offered on SQLite.
        tags = type_coerce(InboxMessage.tags, postgresql.JSONB)
        found.extend(or_(*(tags.contains([tag]) for tag in group)) for group in chosen.tags)
    if chosen.workflows:
        found.append(
            InboxMessage.delivery_id.in_(
                select(Delivery.id)
                .join(Notification, Notification.id == Delivery.notification_id)
                .join(Workflow, Workflow.id == Notification.workflow_id)
                .where(Workflow.key.in_(chosen.workflows))
            )
        )
    if chosen.severity is not None and "none" not in chosen.severity:
        found.append(false())
    if chosen.created_gte is not None:
        found.append(InboxMessage.created_at >= chosen.created_gte)
    if chosen.created_lte is not None:
        found.append(InboxMessage.created_at <= chosen.created_lte)
    return found


@dataclass(frozen=True)
class Context:
    """What a message is shown with besides its row: its subscriber, transaction, workflow."""

    subscriber: Subscriber
    transactions: dict[uuid.UUID, tuple[str, Workflow]]


def _context(session: Session, caller: InboxCaller, rows: list[InboxMessage]) -> Context:
    subscriber = session.get(Subscriber, caller.subscriber_id)
    if subscriber is None or subscriber.organisation_id != caller.organisation_id:
        raise NotFoundError("subscriber not found")
    delivery_ids = [row.delivery_id for row in rows if row.delivery_id is not None]
    transactions: dict[uuid.UUID, tuple[str, Workflow]] = {}
    if delivery_ids:
        for delivery_id, transaction_id, workflow in session.execute(
            select(Delivery.id, Notification.transaction_id, Workflow)
            .join(Notification, Notification.id == Delivery.notification_id)
            .join(Workflow, Workflow.id == Notification.workflow_id)
            .where(
                Delivery.id.in_(delivery_ids),
                Delivery.organisation_id == caller.organisation_id,
            )
        ):
            transactions[delivery_id] = (transaction_id, workflow)
    return Context(subscriber, transactions)


def _time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _workflow(workflow: Workflow | None) -> dict[str, Any] | None:
    if workflow is None:
        return None
    return {
        "id": str(workflow.id),
        "identifier": workflow.key,
        "name": workflow.name,
        "critical": workflow.critical,
        "tags": [],
        "severity": "none",
    }


def _to(subscriber: Subscriber) -> dict[str, Any]:
    return {
        "id": str(subscriber.id),
        "subscriberId": subscriber.external_id,
        "firstName": subscriber.first_name,
        "lastName": subscriber.last_name,
        "email": subscriber.email,
        "phone": subscriber.phone,
        "locale": subscriber.locale,
        "timezone": subscriber.timezone,
        "data": subscriber.data,
    }


def _redirect(url: Any) -> dict[str, Any] | None:
    return {"url": url} if isinstance(url, str) and url else None


def _snoozed(message: InboxMessage, now: datetime) -> bool:
    return message.snoozed_until is not None and message.snoozed_until > now


def render(message: InboxMessage, context: Context, now: datetime) -> dict[str, Any]:
    """The HTTP form (``InboxNotification`` of ``@novu/js``)."""
    transaction, workflow = context.transactions.get(message.delivery_id or uuid.UUID(int=0)) or (
        str(message.id),
        None,
    )
    actions: dict[str, Any] = {}
    for kind in ("primary", "secondary"):
        action = message.actions.get(kind)
        if action:
            actions[f"{kind}Action"] = {
                "label": action["label"],
                "isCompleted": message.completed_action == kind,
                **({"redirect": _redirect(action.get("url"))} if action.get("url") else {}),
            }
    snoozed = _snoozed(message, now)
    answer: dict[str, Any] = {
        "id": str(message.id),
        "transactionId": transaction,
        "subject": message.title,
        "body": message.body,
        "to": _to(context.subscriber),
        "isRead": message.read_at is not None,
        "isSeen": message.seen_at is not None,
        "isArchived": message.archived_at is not None,
        "isSnoozed": snoozed,
        "snoozedUntil": _time(message.snoozed_until) if snoozed else None,
        "createdAt": _time(message.created_at),
        "readAt": _time(message.read_at),
        "firstSeenAt": _time(message.seen_at),
        "archivedAt": _time(message.archived_at),
        "channelType": "in_app",
        "tags": list(message.tags),
        "data": message.data,
        "severity": "none",
        **actions,
    }
    if (redirect := _redirect(message.data.get("url"))) is not None:
        answer["redirect"] = redirect
    if workflow is not None:
        answer["workflow"] = _workflow(workflow)
    return answer


def render_socket(message: InboxMessage, context: Context, now: datetime) -> dict[str, Any]:
    """The Socket.IO form: Novu's message entity, which the client maps itself."""
    shown = render(message, context, now)
    buttons = [
        {"type": kind, "content": action["label"], "url": action.get("url")}
        for kind, action in message.actions.items()
        if kind in ("primary", "secondary")
    ]
    action: dict[str, Any] = {"buttons": buttons}
    if message.completed_action:
        action.update(status="done", result={"type": message.completed_action})
    return {
        "_id": shown["id"],
        "transactionId": shown["transactionId"],
        "subject": shown["subject"],
        "content": shown["body"],
        "read": shown["isRead"],
        "seen": shown["isSeen"],
        "archived": shown["isArchived"],
        "snoozedUntil": shown["snoozedUntil"],
        "createdAt": shown["createdAt"],
        "lastReadDate": shown["readAt"],
        "firstSeenDate": shown["firstSeenAt"],
        "archivedAt": shown["archivedAt"],
        "channel": "in_app",
        "subscriber": {"_id": shown["to"]["id"], **shown["to"]},
        "cta": {"data": shown.get("redirect") or {}, "action": action},
        "tags": shown["tags"],
        "data": shown["data"],
        "workflow": shown.get("workflow"),
        "severity": "none",
    }


def _one(
    session: Session, caller: InboxCaller, message_id: str, lock: bool = False
) -> InboxMessage:
    try:
        wanted = uuid.UUID(message_id)
    except ValueError:
        raise NotFoundError(f"notification {message_id!r} not found") from None
    query = select(InboxMessage).where(_own(caller), InboxMessage.id == wanted)
    if lock:
        query = query.with_for_update()
    message = session.scalars(query).one_or_none()
    if message is None:
        raise NotFoundError(f"notification {message_id!r} not found")
    return message


def page(
    session: Session,
    caller: InboxCaller,
    chosen: Filter,
    *,
    limit: int,
    after: str | None = None,
    offset: int = 0,
) -> dict[str, Any]:
    now = utcnow()
    query = (
        select(InboxMessage)
        .where(_own(caller), *_conditions(chosen, now))
        .order_by(InboxMessage.created_at.desc(), InboxMessage.id.desc())
        .limit(limit + 1)
        .offset(offset)
    )
    if after:
        try:
            cursor = _one(session, caller, after)
        except NotFoundError:
            raise UnprocessableError({"after": ["not a notification of this inbox"]}) from None
        query = query.where(
            or_(
                InboxMessage.created_at < cursor.created_at,
                and_(InboxMessage.created_at == cursor.created_at, InboxMessage.id < cursor.id),
            )
        )
    rows = list(session.scalars(query))
    shown = rows[:limit]
    context = _context(session, caller, shown)
    return {
        "data": [render(row, context, now) for row in shown],
        "hasMore": len(rows) > limit,
        "filter": chosen.wire(),
    }


def count(session: Session, caller: InboxCaller, chosen: Filter) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(InboxMessage)
            .where(_own(caller), *_conditions(chosen, utcnow()))
        )
        or 0
    )


UNREAD = Filter(read=False, archived=False)
UNSEEN = Filter(seen=False, archived=False)


def _unread(total: int) -> dict[str, Any]:
    return {"total": total, "severity": {"high": 0, "medium": 0, "low": 0, "none": total}}


def unread_counts(session: Session, caller: InboxCaller) -> dict[str, Any]:
    """Novu's ``unreadCount``: the total and by severity (everything here is ``none``)."""
    return _unread(count(session, caller, UNREAD))


def _apply(message: InboxMessage, mark: Mark, now: datetime) -> None:
    if mark in ("read", "archive", "unarchive"):
        message.read_at = message.read_at or now
    if mark in ("read", "seen", "archive", "unarchive"):
        message.seen_at = message.seen_at or now
    if mark == "unread":
        message.read_at = None
    if mark == "archive":
        message.archived_at = message.archived_at or now
    elif mark in ("read", "unread", "unarchive"):
        message.archived_at = None
    message.updated_at = now


def mark_one(session: Session, caller: InboxCaller, message_id: str, mark: Mark) -> dict[str, Any]:
    message = _one(session, caller, message_id, lock=True)
    now = utcnow()
    was = (message.seen_at is not None, message.read_at is not None)
    _apply(message, mark, now)
    marks = inbox_marks(
        caller.organisation_id, message.delivery_id, was=was,
        now=(message.seen_at is not None, message.read_at is not None),
    )  # fmt: skip
    publish_after_commit(session, emit(session, marks, now))
    return _shown(session, caller, message, now)


def _shown(
    session: Session, caller: InboxCaller, message: InboxMessage, now: datetime
) -> dict[str, Any]:
    session.flush()
    return render(message, _context(session, caller, [message]), now)


def snooze(
    session: Session, caller: InboxCaller, message_id: str, until: datetime | None
) -> dict[str, Any]:
    message = _one(session, caller, message_id, lock=True)
    now = utcnow()
    if until is not None and until <= now:
        raise UnprocessableError({"snoozeUntil": ["must be in the future"]})
    message.snoozed_until = until
    message.updated_at = now
    return _shown(session, caller, message, now)


def act(
    session: Session, caller: InboxCaller, message_id: str, kind: ActionKind, done: bool
) -> dict[str, Any]:
    """Complete (``done``) or revert the message's primary or secondary action."""
    message = _one(session, caller, message_id, lock=True)
    if kind not in message.actions:
        raise UnprocessableError({"actionType": [f"the notification has no {kind} action"]})
    now = utcnow()
    if done:
        message.completed_action = kind
    elif message.completed_action == kind:
        message.completed_action = None
    message.updated_at = now
    return _shown(session, caller, message, now)


def remove(session: Session, caller: InboxCaller, message_id: str) -> None:
    session.delete(_one(session, caller, message_id, lock=True))


def _selection(
    caller: InboxCaller, ids: list[str] | None, tags: list[str] | None, now: datetime
) -> list[ColumnElement[bool]]:
    groups = (tuple(tags),) if tags else ()
    found = [_own(caller), *_conditions(Filter(tags=groups), now)]
    if ids is not None:
        wanted = []
        for item in ids:
            try:
                wanted.append(uuid.UUID(item))
            except ValueError:
                raise UnprocessableError({"notificationIds": [f"{item!r} is not an id"]}) from None
        found.append(InboxMessage.id.in_(wanted))
    return found


def mark_many(
    session: Session,
    caller: InboxCaller,
    mark: Mark,
    *,
    ids: list[str] | None = None,
    tags: list[str] | None = None,
    only_read: bool = False,
) -> int:
    """Mark every message selected (by ids, else by tags, else all); answers how many changed.
    Ids of other subscribers select nothing."""
    now = utcnow()
    where = _selection(caller, ids, tags, now)
    values: dict[str, Any] = {"updated_at": now}
    if mark == "seen":
        where.append(InboxMessage.seen_at.is_(None))
        values["seen_at"] = now
    elif mark == "read":
        where.append(or_(InboxMessage.read_at.is_(None), InboxMessage.archived_at.is_not(None)))
        values.update(
            read_at=func.coalesce(InboxMessage.read_at, now),
            seen_at=func.coalesce(InboxMessage.seen_at, now),
            archived_at=None,
        )
    elif mark == "archive":
        where.append(InboxMessage.archived_at.is_(None))
        if only_read:
            where.append(InboxMessage.read_at.is_not(None))
        values.update(
            archived_at=now,
            read_at=func.coalesce(InboxMessage.read_at, now),
            seen_at=func.coalesce(InboxMessage.seen_at, now),
        )
    else:
        raise ValueError(f"mark: {mark!r} is not a bulk mark")
    # The rows as they were, locked: which become seen or read (outbound webhook events).
    before = session.execute(
        select(InboxMessage.delivery_id, InboxMessage.seen_at, InboxMessage.read_at)
        .where(*where)
        .with_for_update()
    ).all()
    result = session.execute(update(InboxMessage).where(*where).values(**values))
    marks = [
        change
        for row in before
        for change in inbox_marks(
            caller.organisation_id, row.delivery_id,
            was=(row.seen_at is not None, row.read_at is not None), now=(True, mark != "seen"),
        )
    ]  # fmt: skip
    publish_after_commit(session, emit(session, marks, now))
    return int(getattr(result, "rowcount", 0) or 0)


def remove_many(
    session: Session, caller: InboxCaller, *, ids: list[str] | None, tags: list[str] | None
) -> int:
    result = session.execute(delete(InboxMessage).where(*_selection(caller, ids, tags, utcnow())))
    return int(getattr(result, "rowcount", 0) or 0)


# --- many inboxes at once: a burst of the live change feed ----------------------------------
#
# The live hub reads a burst of the change feed (a broadcast's write-back: thousands of inboxes)
# in a few queries, not a few per inbox. The queries select by plain ``IN`` lists, which the
# ``(organisation_id, subscriber_id)`` index serves on both databases; each row is then kept
# only if it is of the very inbox it was asked for, which is what keeps one inbox's message or
# count from ever being another's.

Owner = tuple[uuid.UUID, uuid.UUID]
"""An inbox: (organisation id, subscriber id)."""

#: What :func:`_to` shows of a subscriber: its addresses and the rest stay unread.
_SHOWN_OF_SUBSCRIBER = (
    Subscriber.organisation_id,
    Subscriber.external_id,
    Subscriber.first_name,
    Subscriber.last_name,
    Subscriber.email,
    Subscriber.phone,
    Subscriber.locale,
    Subscriber.timezone,
    Subscriber.data,
)


def new_messages(
    session: Session, wanted: dict[uuid.UUID, Owner]
) -> dict[uuid.UUID, dict[str, Any]]:
    """The Socket.IO form of each message of ``wanted`` (message id: the inbox it was announced
    for), in at most three queries however many inboxes. A message that is gone, or is not of
    the inbox it was announced for, is left out."""
    if not wanted:
        return {}
    organisations = {organisation_id for organisation_id, _ in wanted.values()}
    rows = [
        row
        for row in session.scalars(
            select(InboxMessage).where(
                InboxMessage.id.in_(list(wanted)),
                InboxMessage.organisation_id.in_(organisations),
            )
        )
        if wanted[row.id] == (row.organisation_id, row.subscriber_id)
    ]
    if not rows:
        return {}
    subscribers = {
        found.id: found
        for found in session.scalars(
            select(Subscriber)
            .options(load_only(*_SHOWN_OF_SUBSCRIBER))
            .where(
                Subscriber.id.in_({row.subscriber_id for row in rows}),
                Subscriber.organisation_id.in_(organisations),
            )
        )
    }
    organisation_of = {row.delivery_id: row.organisation_id for row in rows if row.delivery_id}
    transactions: dict[uuid.UUID, tuple[str, Workflow]] = {}
    if organisation_of:
        for delivery_id, organisation_id, transaction_id, workflow in session.execute(
            select(Delivery.id, Delivery.organisation_id, Notification.transaction_id, Workflow)
            .join(Notification, Notification.id == Delivery.notification_id)
            .join(Workflow, Workflow.id == Notification.workflow_id)
            .where(
                Delivery.id.in_(list(organisation_of)),
                Delivery.organisation_id.in_(organisations),
            )
        ):
            if organisation_of[delivery_id] == organisation_id:
                transactions[delivery_id] = (transaction_id, workflow)
    now = utcnow()
    found: dict[uuid.UUID, dict[str, Any]] = {}
    for row in rows:
        subscriber = subscribers.get(row.subscriber_id)
        if subscriber is None or subscriber.organisation_id != row.organisation_id:
            continue
        found[row.id] = render_socket(row, Context(subscriber, transactions), now)
    return found


def live_counts(session: Session, owners: set[Owner]) -> dict[Owner, dict[str, Any]]:
    """Each inbox's unread counts (Novu's ``unreadCount``, as :func:`unread_counts`) and its
    unseen count (as ``count(UNSEEN)``), in one query however many inboxes."""
    if not owners:
        return {}
    now = utcnow()
    query = (
        select(
            InboxMessage.organisation_id,
            InboxMessage.subscriber_id,
            func.count().filter(and_(*_conditions(UNREAD, now))),
            func.count().filter(and_(*_conditions(UNSEEN, now))),
        )
        .where(
            InboxMessage.organisation_id.in_({organisation_id for organisation_id, _ in owners}),
            InboxMessage.subscriber_id.in_({subscriber_id for _, subscriber_id in owners}),
        )
        .group_by(InboxMessage.organisation_id, InboxMessage.subscriber_id)
    )
    found = {owner: {"unread": _unread(0), "unseen": 0} for owner in owners}
    for organisation_id, subscriber_id, unread, unseen in session.execute(query):
        owner = (organisation_id, subscriber_id)
        if owner in found:
            found[owner] = {"unread": _unread(int(unread)), "unseen": int(unseen)}
    return found
