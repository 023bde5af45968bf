"""``/v2/subscribers``: create (an upsert), search, read, patch and delete subscribers, as
Novu's SDKs call them.

A subscriber is named by the application's own id for it (Novu's ``subscriberId``, our
``external_id``) in every path; ``_id`` is the row's id. Fields are validated by the
``create_subscriber`` action's arguments (the 422 names the field in Novu's spelling). Novu's
``avatar`` has no column here and is ignored; ``_environmentId`` is the organisation (this
project has no environments).

Deleting a subscriber erases the person and cancels what was not sent to them yet
(:mod:`dispatcher.notifications.erasure`); the anonymous record of what was sent stays.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dispatcher.actions.base import ActionContext, argument_errors
from dispatcher.actions.recipients import CreateSubscriberArgs, create_subscriber
from dispatcher.api.errors import NotFoundError, UnprocessableError, wire_field
from dispatcher.api.keyset import SortedCursorQueryDep, keyset_page
from dispatcher.api.rate_limit import CallerDep
from dispatcher.api.routing import NOT_FOUND, resource_router
from dispatcher.api.schemas import (
    CursorPage,
    Envelope,
    Field,
    SubscriberProfile,
    WireModel,
    envelope,
)
from dispatcher.notifications.erasure import erase_subscriber, not_erased
from dispatcher.runtime.resources import database
from models import Subscriber

router: APIRouter = resource_router(prefix="/v2/subscribers", tag="Subscribers")

#: Profile fields a caller may set, by their names here.
PROFILE_FIELDS = ("first_name", "last_name", "email", "phone", "locale", "timezone", "data")
#: Novu's ``orderBy`` values this server sorts by, and the column of each.
ORDER_COLUMNS = {"createdAt": Subscriber.created_at, "updatedAt": Subscriber.updated_at}


class CreateSubscriberRequest(SubscriberProfile):
    subscriber_id: str


class SubscriberAnswer(WireModel):
    id: str = Field(alias="_id")
    subscriber_id: str
    organization_id: str = Field(alias="_organizationId")
    environment_id: str = Field(alias="_environmentId")
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    locale: str | None = None
    timezone: str | None = None
    data: dict[str, Any] | None = None
    deleted: bool = False
    created_at: str
    updated_at: str


class RemovedAnswer(WireModel):
    acknowledged: bool
    status: Literal["deleted"]


SubscriberIdPath = Annotated[str, Path(alias="subscriberId", min_length=1, max_length=200)]


def timestamp(value: Any) -> str:
    return str(value.isoformat(timespec="milliseconds").replace("+00:00", "Z"))


def render(subscriber: Subscriber) -> SubscriberAnswer:
    return SubscriberAnswer(
        _id=str(subscriber.id),
        subscriber_id=subscriber.external_id,
        _organizationId=str(subscriber.organisation_id),
        _environmentId=str(subscriber.organisation_id),
        first_name=subscriber.first_name,
        last_name=subscriber.last_name,
        email=subscriber.email,
        phone=subscriber.phone,
        locale=subscriber.locale,
        timezone=subscriber.timezone,
        data=subscriber.data,
        created_at=timestamp(subscriber.created_at),
        updated_at=timestamp(subscriber.updated_at),
    )


def find_subscriber(session: Session, organisation_id: uuid.UUID, external_id: str) -> Subscriber:
    """The organisation's subscriber; another organisation's reads exactly like a missing one."""
    subscriber = session.scalars(
        select(Subscriber).where(
            Subscriber.organisation_id == organisation_id,
            Subscriber.external_id == external_id,
            not_erased(),
        )
    ).one_or_none()
    if subscriber is None:
        raise NotFoundError(f"subscriber {external_id!r} not found")
    return subscriber


def checked_profile(external_id: str, given: dict[str, Any]) -> CreateSubscriberArgs:
    """The fields validated as ``create_subscriber`` validates them (422 naming the field)."""
    try:
        return CreateSubscriberArgs.model_validate({"external_id": external_id, **given})
    except ValidationError as exc:
        errors: dict[str, list[str]] = {}
        for item in argument_errors(exc):
            name = "subscriberId" if item["field"] == "external_id" else wire_field(item["field"])
            errors.setdefault(name, []).append(item["message"])
        raise UnprocessableError(errors) from None


def given_fields(body: SubscriberProfile) -> dict[str, Any]:
    """The profile fields the caller set (a field left out keeps its stored value; ``data``
    sent as null is emptied)."""
    given = {name: getattr(body, name) for name in PROFILE_FIELDS if name in body.model_fields_set}
    if "data" in given and given["data"] is None:
        given["data"] = {}
    return given


def apply_profile(subscriber: Subscriber, args: CreateSubscriberArgs, names: set[str]) -> None:
    for name in names:
        setattr(subscriber, name, getattr(args, name))


@router.post("", status_code=201, response_model=Envelope[SubscriberAnswer])
def create_or_update_subscriber(
    body: CreateSubscriberRequest,
    caller: CallerDep,
    fail_if_exists: Annotated[bool, Query(alias="failIfExists")] = False,
) -> dict[str, Any]:
    """Create a subscriber, or update the fields given of an existing one (unless
    ``failIfExists``: then 422 naming ``subscriberId``, since the SDKs retry a 409)."""
    given = given_fields(body)
    args = checked_profile(body.subscriber_id, given)
    try:
        return envelope(_upsert(caller.organisation_id, args, set(given), fail_if_exists))
    except IntegrityError:
        # Created concurrently by another request: this one is then an update of it.
        return envelope(_upsert(caller.organisation_id, args, set(given), fail_if_exists))


def _upsert(
    organisation_id: uuid.UUID, args: CreateSubscriberArgs, given: set[str], fail_if_exists: bool
) -> SubscriberAnswer:
    with database().transaction() as session:
        existing = session.scalars(
            select(Subscriber).where(
                Subscriber.organisation_id == organisation_id,
                Subscriber.external_id == args.external_id,
            )
        ).one_or_none()
        if existing is not None:
            if fail_if_exists:
                raise UnprocessableError({"subscriberId": ["a subscriber with this id exists"]})
            apply_profile(existing, args, given)
            session.flush()
            return render(existing)
        create_subscriber(ActionContext(session, organisation_id), args)
        return render(find_subscriber(session, organisation_id, args.external_id))


@router.get("", response_model=CursorPage[SubscriberAnswer])
def search_subscribers(
    *,
    caller: CallerDep,
    cursor: SortedCursorQueryDep,
    email: str | None = None,
    name: str | None = None,
    phone: str | None = None,
    subscriber_id: Annotated[str | None, Query(alias="subscriberId")] = None,
) -> dict[str, Any]:
    """The organisation's subscribers, newest first by default; each filter matches a part of
    the field, case-insensitively (``name``: the first or last name or both)."""
    query = select(Subscriber).where(
        Subscriber.organisation_id == caller.organisation_id, not_erased()
    )
    if email:
        query = query.where(Subscriber.email.icontains(email, autoescape=True))
    if phone:
        query = query.where(Subscriber.phone.icontains(phone, autoescape=True))
    if subscriber_id:
        query = query.where(Subscriber.external_id.icontains(subscriber_id, autoescape=True))
    if name:
        full = (
            func.coalesce(Subscriber.first_name, "") + " " + func.coalesce(Subscriber.last_name, "")
        )
        query = query.where(full.icontains(name, autoescape=True))
    with database().session() as session:
        return keyset_page(
            session, query, sort=ORDER_COLUMNS[cursor.order_by], row_id=Subscriber.id,
            page=cursor.page(), render=render,
        )  # fmt: skip


@router.get("/{subscriberId}", response_model=Envelope[SubscriberAnswer], responses=NOT_FOUND)
def get_subscriber(caller: CallerDep, subscriber_id: SubscriberIdPath) -> dict[str, Any]:
    with database().session() as session:
        return envelope(render(find_subscriber(session, caller.organisation_id, subscriber_id)))


@router.patch("/{subscriberId}", response_model=Envelope[SubscriberAnswer], responses=NOT_FOUND)
def patch_subscriber(
    body: SubscriberProfile, caller: CallerDep, subscriber_id: SubscriberIdPath
) -> dict[str, Any]:
    """Change the fields given; the others keep their values."""
    given = given_fields(body)
    args = checked_profile(subscriber_id, given)
    with database().transaction() as session:
        subscriber = find_subscriber(session, caller.organisation_id, subscriber_id)
        apply_profile(subscriber, args, set(given))
        session.flush()
        return envelope(render(subscriber))


@router.delete("/{subscriberId}", response_model=Envelope[RemovedAnswer], responses=NOT_FOUND)
def delete_subscriber(caller: CallerDep, subscriber_id: SubscriberIdPath) -> dict[str, Any]:
    """Erase the subscriber and everything of theirs (see the module's docstring)."""
    with database().session() as session:
        subscriber = find_subscriber(session, caller.organisation_id, subscriber_id)
    erase_subscriber(caller.organisation_id, subscriber.id)
    return envelope(RemovedAnswer(acknowledged=True, status="deleted"))
