"""``/v1/inbox``: the browser inbox, in Novu's inbox protocol (what ``@novu/js`` calls).

``POST /v1/inbox/session`` turns an application identifier, a subscriber id and its proof
(:mod:`dispatcher.api.inbox.sessions`) into a session token; every other route takes that token
as ``Authorization: Bearer`` and works on that subscriber's messages alone
(:mod:`dispatcher.api.inbox.feed`). API keys are refused here (401), and the token opens no
other route. Answers are Novu's: the list and the counts unwrapped (``{data, hasMore, filter}``,
``{data: [{count, filter}]}``), one notification as ``{data: ...}``, bulk marks 204.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ConfigDict, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from dispatcher.actions.base import ActionContext
from dispatcher.actions.recipients import SetPreferenceArgs, set_preference
from dispatcher.api.errors import ErrorBody, UnprocessableError
from dispatcher.api.inbox import feed, sessions
from dispatcher.api.inbox.cors import check_origin
from dispatcher.api.inbox.live import LiveHub
from dispatcher.api.inbox.secrets import keys_for_application
from dispatcher.api.inbox.sessions import InboxCaller, InboxUnauthorizedError
from dispatcher.api.routers.preferences import (
    NOVU_CHANNELS,
    Criticality,
    PreferenceChannels,
    find_workflow,
    preferences_of,
)
from dispatcher.api.routing import NOT_FOUND
from dispatcher.api.schemas import Field, WireModel, envelope
from dispatcher.notifications.erasure import not_erased
from dispatcher.runtime import inbox_events
from dispatcher.runtime.resources import database
from models import Subscriber, Workflow

INBOX_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Session token missing, malformed or expired"},
    403: {"model": ErrorBody, "description": "The page's origin is not allowed"},
    422: {"model": ErrorBody, "description": "Validation failed: `errors` names every bad field"},
}

router = APIRouter(prefix="/v1/inbox", tags=["Inbox"], responses=INBOX_ERRORS)

session_bearer = HTTPBearer(
    auto_error=False, description="The session token of `POST /v1/inbox/session`"
)


def inbox_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(session_bearer)],
) -> InboxCaller:
    caller, keys = sessions.verify(credentials.credentials if credentials else None)
    check_origin(request, keys)
    return caller


SubscriberDep = Annotated[InboxCaller, Depends(inbox_caller)]


def _stream_caller(request: Request, token: str | None) -> InboxCaller:
    caller, keys = sessions.verify(token)
    check_origin(request, keys)
    return caller


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}},
)
async def live_events(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(session_bearer)],
    token: Annotated[str | None, Query(max_length=4000)] = None,
) -> StreamingResponse:
    """The subscriber's live events as Server-Sent Events, named as the Socket.IO ones
    (``notification_received``, ``unread_count_changed``, ``unseen_count_changed``); the
    session token as ``?token=`` (``EventSource`` sends no headers) or ``Authorization``. Both
    counts come first."""
    given = token or (credentials.credentials if credentials else None)
    caller = await run_in_threadpool(_stream_caller, request, given)
    hub: LiveHub = request.app.state.live_hub
    return StreamingResponse(
        hub.stream(caller),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


# --- the session ----------------------------------------------------------------------------


class SessionSubscriber(WireModel):
    subscriber_id: str = Field(min_length=1, max_length=200)


class SessionRequest(WireModel):
    application_identifier: str = Field(min_length=1, max_length=64)
    #: ``subscriber.subscriberId`` (what ``@novu/js`` sends) or ``subscriberId`` (older clients).
    subscriber: SessionSubscriber | str | None = None
    subscriber_id: str | None = Field(default=None, max_length=200)
    #: The hex HMAC-SHA256 of the subscriber id, or a JWT of the application's server.
    subscriber_hash: str | None = Field(default=None, max_length=4000)


class UnreadCount(WireModel):
    total: int
    severity: dict[str, int]


class SessionAnswer(WireModel):
    token: str
    total_unread_count: int
    unread_count: UnreadCount
    remove_novu_branding: bool = True
    is_development_mode: bool = False
    max_snooze_duration_hours: int = 24 * 30
    application_identifier: str


class SessionEnvelope(WireModel):
    data: SessionAnswer


def _subscriber_row(session: Session, organisation_id: uuid.UUID, external_id: str) -> Subscriber:
    """The subscriber, created when the application's first page for it opens (the proof says
    the application vouches for the id; the profile the browser sends is not taken)."""
    found = session.scalars(
        select(Subscriber).where(
            Subscriber.organisation_id == organisation_id,
            Subscriber.external_id == external_id,
            not_erased(),
        )
    ).one_or_none()
    if found is not None:
        return found
    return ActionContext(session, organisation_id).add(Subscriber(external_id=external_id))


@router.post("/session", response_model=SessionEnvelope, status_code=201)
def open_session(body: SessionRequest, request: Request) -> dict[str, Any]:
    """A session token for one subscriber of the application, and its unread count."""
    keys = keys_for_application(body.application_identifier)
    if keys is None:
        raise InboxUnauthorizedError("applicationIdentifier: no such application")
    check_origin(request, keys)
    claimed = body.subscriber if isinstance(body.subscriber, str) else None
    if isinstance(body.subscriber, SessionSubscriber):
        claimed = body.subscriber.subscriber_id
    external_id = sessions.verified_subscriber(
        keys, claimed or body.subscriber_id, body.subscriber_hash
    )
    with database().transaction() as session:
        row = _subscriber_row(session, keys.organisation_id, external_id)
        caller = InboxCaller(keys.organisation_id, external_id, row.id)
        counts = feed.unread_counts(session, caller)
    answer = SessionAnswer(
        token=sessions.issue(keys, caller),
        total_unread_count=counts["total"],
        unread_count=UnreadCount.model_validate(counts),
        application_identifier=keys.application_identifier,
    )
    return envelope(answer)


# --- the feed -------------------------------------------------------------------------------


def _moment(value: float | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(value / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        raise UnprocessableError({field: ["not a time in milliseconds"]}) from None


def _tags_of_query(request: Request) -> tuple[tuple[str, ...], ...]:
    """``tags[]=a&tags[]=b`` (any of them) or ``tags[0][]=a&tags[1][]=b`` (all groups)."""
    single = tuple(request.query_params.getlist("tags[]"))
    groups: dict[int, list[str]] = {}
    for name, value in request.query_params.multi_items():
        if name.startswith("tags[") and name.endswith("][]") and name[5:-3].isdigit():
            groups.setdefault(int(name[5:-3]), []).append(value)
    found = [tuple(groups[index]) for index in sorted(groups)]
    return ((single,) if single else ()) + tuple(found)


class FilterBody(WireModel):
    """One filter of ``GET /v1/inbox/notifications/count``."""

    tags: list[str] | dict[str, Any] | None = None
    read: bool | None = None
    seen: bool | None = None
    archived: bool | None = None
    snoozed: bool | None = None
    severity: str | list[str] | None = None
    data: Any = None
    workflows: list[str] | None = None
    created_gte: float | None = None
    created_lte: float | None = None


def _tag_groups(tags: list[str] | dict[str, Any] | None) -> tuple[tuple[str, ...], ...]:
    if tags is None:
        return ()
    if isinstance(tags, list):
        return (tuple(str(tag) for tag in tags),) if tags else ()
    if isinstance(tags.get("or"), list):
        return (tuple(str(tag) for tag in tags["or"]),) if tags["or"] else ()
    if isinstance(tags.get("and"), list):
        return tuple(
            tuple(str(tag) for tag in group.get("or", []))
            for group in tags["and"]
            if isinstance(group, dict) and group.get("or")
        )
    raise UnprocessableError({"tags": ["a list of tags, {or: [...]} or {and: [{or: [...]}]}"]})


def _severity(value: str | list[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    chosen = (value,) if isinstance(value, str) else tuple(value)
    unknown = [item for item in chosen if item not in feed.SEVERITIES]
    if unknown:
        raise UnprocessableError({"severity": [f"one of {', '.join(feed.SEVERITIES)}"]})
    return chosen


def _filter(body: FilterBody) -> feed.Filter:
    if body.data is not None:
        raise UnprocessableError({"data": ["filtering by data is not supported"]})
    return feed.Filter(
        read=body.read,
        seen=body.seen,
        archived=body.archived,
        snoozed=body.snoozed,
        tags=_tag_groups(body.tags),
        workflows=tuple(body.workflows or ()),
        severity=_severity(body.severity),
        created_gte=_moment(body.created_gte, "createdGte"),
        created_lte=_moment(body.created_lte, "createdLte"),
    )


class InboxNotification(WireModel):
    """Novu's ``InboxNotification``; the fields not declared here (``to``, ``readAt``,
    ``primaryAction``, ``workflow``...) are sent as they are."""

    model_config = ConfigDict(**{**WireModel.model_config, "extra": "allow"})

    id: str
    transaction_id: str
    subject: str | None = None
    body: str
    is_read: bool
    is_seen: bool
    is_archived: bool
    is_snoozed: bool
    created_at: str
    channel_type: str
    tags: list[str]
    data: dict[str, Any]
    severity: str


class NotificationsPage(WireModel):
    data: list[InboxNotification]
    has_more: bool
    filter: dict[str, Any]


class NotificationEnvelope(WireModel):
    data: InboxNotification


class FilterCount(WireModel):
    count: int
    filter: dict[str, Any]


class CountsAnswer(WireModel):
    data: list[FilterCount]


@router.get("/notifications", response_model=NotificationsPage)
def list_notifications(  # noqa: PLR0917 - Novu's query parameters
    caller: SubscriberDep,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=feed.MAX_PAGE_SIZE)] = 10,
    after: Annotated[str | None, Query(max_length=100)] = None,
    offset: Annotated[int, Query(ge=0, le=feed.MAX_OFFSET)] = 0,
    read: bool | None = None,
    seen: bool | None = None,
    archived: bool | None = None,
    snoozed: bool | None = None,
    workflows: Annotated[list[str] | None, Query(alias="workflows[]")] = None,
    severity: Annotated[list[str] | None, Query(alias="severity[]")] = None,
    data: Annotated[str | None, Query()] = None,
    created_gte: Annotated[float | None, Query(alias="createdGte")] = None,
    created_lte: Annotated[float | None, Query(alias="createdLte")] = None,
) -> dict[str, Any]:
    """The subscriber's notifications, newest first; ``after`` the last id of the previous page."""
    chosen = _filter(
        FilterBody(
            read=read,
            seen=seen,
            archived=archived,
            snoozed=snoozed,
            workflows=workflows,
            severity=severity or request.query_params.get("severity"),
            data=data,
            created_gte=created_gte,
            created_lte=created_lte,
        )
    )
    chosen = dataclasses.replace(chosen, tags=_tags_of_query(request))
    with database().session() as session:
        return feed.page(session, caller, chosen, limit=limit, after=after, offset=offset)


@router.get("/notifications/count", response_model=CountsAnswer)
def count_notifications(
    caller: SubscriberDep, filters: Annotated[str, Query(max_length=20_000)] = "[{}]"
) -> dict[str, Any]:
    """How many notifications each filter of the JSON list ``filters`` selects (at most 20)."""
    try:
        parsed = json.loads(filters)
        if not isinstance(parsed, list) or len(parsed) > 20:
            raise ValueError
        bodies = [FilterBody.model_validate(item) for item in parsed]
    except (ValueError, ValidationError):
        raise UnprocessableError({"filters": ["a JSON list of at most 20 filters"]}) from None
    chosen = [_filter(body) for body in bodies]
    with database().session() as session:
        counts = [feed.count(session, caller, item) for item in chosen]
    return {
        "data": [
            {"count": number, "filter": item.wire()}
            for number, item in zip(counts, chosen, strict=True)
        ]
    }


def _changed(caller: InboxCaller) -> None:
    inbox_events.publish([inbox_events.event(caller.organisation_id, caller.subscriber_id)])


def _mark(caller: InboxCaller, notification_id: str, mark: feed.Mark) -> dict[str, Any]:
    with database().transaction() as session:
        shown = feed.mark_one(session, caller, notification_id, mark)
    _changed(caller)
    return envelope(shown)


@router.patch(
    "/notifications/{notificationId}/read",
    response_model=NotificationEnvelope,
    responses=NOT_FOUND,
)
def read_notification(caller: SubscriberDep, notificationId: str) -> dict[str, Any]:  # noqa: N803
    return _mark(caller, notificationId, "read")


@router.patch(
    "/notifications/{notificationId}/unread",
    response_model=NotificationEnvelope,
    responses=NOT_FOUND,
)
def unread_notification(caller: SubscriberDep, notificationId: str) -> dict[str, Any]:  # noqa: N803
    return _mark(caller, notificationId, "unread")


@router.patch(
    "/notifications/{notificationId}/archive",
    response_model=NotificationEnvelope,
    responses=NOT_FOUND,
)
def archive_notification(caller: SubscriberDep, notificationId: str) -> dict[str, Any]:  # noqa: N803
    return _mark(caller, notificationId, "archive")


@router.patch(
    "/notifications/{notificationId}/unarchive",
    response_model=NotificationEnvelope,
    responses=NOT_FOUND,
)
def unarchive_notification(caller: SubscriberDep, notificationId: str) -> dict[str, Any]:  # noqa: N803
    return _mark(caller, notificationId, "unarchive")


class SnoozeRequest(WireModel):
    snooze_until: datetime

    def until(self) -> datetime:
        moment = self.snooze_until
        if moment.tzinfo is None:
            raise UnprocessableError({"snoozeUntil": ["give a time zone (an ISO time with Z)"]})
        return moment


@router.patch(
    "/notifications/{notificationId}/snooze",
    response_model=NotificationEnvelope,
    responses=NOT_FOUND,
)
def snooze_notification(
    caller: SubscriberDep,
    notificationId: str,  # noqa: N803
    body: SnoozeRequest,
) -> dict[str, Any]:
    """Hide the notification from the feed and the counts until ``snoozeUntil``."""
    with database().transaction() as session:
        shown = feed.snooze(session, caller, notificationId, body.until())
    _changed(caller)
    return envelope(shown)


@router.patch(
    "/notifications/{notificationId}/unsnooze",
    response_model=NotificationEnvelope,
    responses=NOT_FOUND,
)
def unsnooze_notification(caller: SubscriberDep, notificationId: str) -> dict[str, Any]:  # noqa: N803
    with database().transaction() as session:
        shown = feed.snooze(session, caller, notificationId, None)
    _changed(caller)
    return envelope(shown)


class ActionRequest(WireModel):
    action_type: feed.ActionKind


def _act(caller: InboxCaller, notification_id: str, body: ActionRequest, done: bool) -> Any:
    with database().transaction() as session:
        shown = feed.act(session, caller, notification_id, body.action_type, done)
    return envelope(shown)


@router.patch(
    "/notifications/{notificationId}/complete",
    response_model=NotificationEnvelope,
    responses=NOT_FOUND,
)
def complete_action(
    caller: SubscriberDep,
    notificationId: str,  # noqa: N803
    body: ActionRequest,
) -> dict[str, Any]:
    """Mark the notification's primary or secondary action done."""
    answer: dict[str, Any] = _act(caller, notificationId, body, done=True)
    return answer


@router.patch(
    "/notifications/{notificationId}/revert",
    response_model=NotificationEnvelope,
    responses=NOT_FOUND,
)
def revert_action(
    caller: SubscriberDep,
    notificationId: str,  # noqa: N803
    body: ActionRequest,
) -> dict[str, Any]:
    answer: dict[str, Any] = _act(caller, notificationId, body, done=False)
    return answer


@router.delete("/notifications/{notificationId}/delete", status_code=204, responses=NOT_FOUND)
def delete_notification(caller: SubscriberDep, notificationId: str) -> Response:  # noqa: N803
    with database().transaction() as session:
        feed.remove(session, caller, notificationId)
    _changed(caller)
    return Response(status_code=204)


class BulkRequest(WireModel):
    """Which notifications: these ids, else those with any of these tags, else all."""

    notification_ids: list[str] | None = Field(default=None, max_length=feed.MAX_BULK)
    tags: list[str] | None = Field(default=None, max_length=50)
    #: A JSON string (Novu's): not supported.
    data: str | None = None

    def checked(self) -> BulkRequest:
        if self.data is not None:
            raise UnprocessableError({"data": ["filtering by data is not supported"]})
        return self


def _bulk(
    caller: InboxCaller, body: BulkRequest, mark: feed.Mark, only_read: bool = False
) -> Response:
    body = body.checked()
    with database().transaction() as session:
        feed.mark_many(
            session, caller, mark, ids=body.notification_ids, tags=body.tags, only_read=only_read
        )
    _changed(caller)
    return Response(status_code=204)


@router.post("/notifications/read", status_code=204)
def read_all(caller: SubscriberDep, body: BulkRequest) -> Response:
    """Mark read (and seen) the notifications chosen."""
    return _bulk(caller, body, "read")


@router.post("/notifications/seen", status_code=204)
def seen_all(caller: SubscriberDep, body: BulkRequest) -> Response:
    return _bulk(caller, body, "seen")


@router.post("/notifications/archive", status_code=204)
def archive_all(caller: SubscriberDep, body: BulkRequest) -> Response:
    return _bulk(caller, body, "archive")


@router.post("/notifications/read-archive", status_code=204)
def archive_all_read(caller: SubscriberDep, body: BulkRequest) -> Response:
    """Archive the notifications chosen that are read."""
    return _bulk(caller, body, "archive", only_read=True)


@router.post("/notifications/delete", status_code=204)
def delete_all(caller: SubscriberDep, body: BulkRequest) -> Response:
    body = body.checked()
    with database().transaction() as session:
        feed.remove_many(session, caller, ids=body.notification_ids, tags=body.tags)
    _changed(caller)
    return Response(status_code=204)


# --- preferences ----------------------------------------------------------------------------


class InboxWorkflow(WireModel):
    id: str
    identifier: str
    name: str
    critical: bool
    tags: list[str] = Field(default_factory=list)
    severity: str = "none"


class InboxPreference(WireModel):
    level: str
    enabled: bool
    channels: PreferenceChannels
    workflow: InboxWorkflow | None = None


class PreferencesEnvelope(WireModel):
    data: list[InboxPreference]


class PreferenceEnvelope(WireModel):
    data: InboxPreference


def _preferences(
    session: Session, caller: InboxCaller, criticality: Criticality
) -> list[InboxPreference]:
    subscriber = session.get(Subscriber, caller.subscriber_id)
    assert subscriber is not None  # the token names a row of this organisation
    answer = preferences_of(session, subscriber, criticality)
    workflows = {
        workflow.key: workflow
        for workflow in session.scalars(
            select(Workflow).where(Workflow.organisation_id == caller.organisation_id)
        )
    }
    found = [
        InboxPreference(
            level="global", enabled=answer.global_.enabled, channels=answer.global_.channels
        )
    ]
    for item in answer.workflows:
        workflow = workflows[item.workflow.identifier]
        found.append(
            InboxPreference(
                level="template",
                enabled=item.enabled,
                channels=item.channels,
                workflow=InboxWorkflow(
                    id=str(workflow.id),
                    identifier=workflow.key,
                    name=workflow.name,
                    critical=workflow.critical,
                ),
            )
        )
    return found


@router.get("/preferences", response_model=PreferencesEnvelope)
def list_inbox_preferences(
    caller: SubscriberDep, criticality: Criticality = "nonCritical"
) -> dict[str, Any]:
    """The subscriber's global preferences, then each workflow's (critical ones on request)."""
    with database().session() as session:
        return envelope(_preferences(session, caller, criticality))


def _set(
    session: Session, caller: InboxCaller, workflow: Workflow | None, channels: PreferenceChannels
) -> None:
    ctx = ActionContext(session, caller.organisation_id)
    for channel in NOVU_CHANNELS:
        enabled = getattr(channels, channel.value)
        if enabled is None:
            continue
        set_preference(
            ctx,
            SetPreferenceArgs(
                subscriber_id=caller.subscriber_external_id,
                workflow_id=workflow.id if workflow else None,
                channel_type=channel,
                enabled=enabled,
            ),
        )
    session.flush()


def _one_preference(
    session: Session, caller: InboxCaller, workflow: Workflow | None
) -> dict[str, Any]:
    every = _preferences(session, caller, "all")
    for item in every:
        if (item.workflow is None and workflow is None) or (
            item.workflow is not None
            and workflow is not None
            and item.workflow.id == str(workflow.id)
        ):
            return envelope(item)
    return envelope(every[0])


@router.patch("/preferences", response_model=PreferenceEnvelope)
def update_global_preferences(caller: SubscriberDep, body: PreferenceChannels) -> dict[str, Any]:
    """Turn channels on or off for every workflow (critical ones are delivered regardless)."""
    with database().transaction() as session:
        _set(session, caller, None, body)
        return _one_preference(session, caller, None)


class BulkPreference(PreferenceChannels):
    workflow_id: str = Field(max_length=200)


class BulkPreferencesRequest(WireModel):
    preferences: list[BulkPreference] = Field(max_length=100)


@router.patch("/preferences/bulk", response_model=PreferencesEnvelope)
def update_preferences_in_bulk(
    caller: SubscriberDep, body: BulkPreferencesRequest
) -> dict[str, Any]:
    """Several workflows' channels at once; a critical workflow refuses the whole change."""
    with database().transaction() as session:
        chosen = []
        for item in body.preferences:
            workflow = find_workflow(session, caller.organisation_id, item.workflow_id)
            _set(session, caller, workflow, item)
            chosen.append(str(workflow.id) if workflow else None)
        every = _preferences(session, caller, "all")
        return envelope(
            [item for item in every if item.workflow is not None and item.workflow.id in chosen]
        )


@router.patch("/preferences/{workflowId}", response_model=PreferenceEnvelope)
def update_workflow_preferences(
    caller: SubscriberDep,
    workflowId: str,  # noqa: N803
    body: PreferenceChannels,
) -> dict[str, Any]:
    """Turn channels on or off for one workflow (refused for a critical one: 422)."""
    with database().transaction() as session:
        workflow = find_workflow(session, caller.organisation_id, workflowId)
        _set(session, caller, workflow, body)
        return _one_preference(session, caller, workflow)
