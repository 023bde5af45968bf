"""``/v1/suppressions``: addresses the organisation no longer sends to (ours; Novu has none).

A hard bounce, a complaint or an invalid number reported by a provider's callback suppresses
the address on its channel: later deliveries to it are ``skipped`` with reason ``suppressed``
before any request. ``GET`` lists them (Novu's cursor list; filters ``channel`` and
``address``), ``DELETE /{suppressionId}`` lifts one.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from dispatcher.api.errors import NotFoundError
from dispatcher.api.keyset import DEFAULT_LIMIT, MAX_LIMIT, PageRequest, keyset_page
from dispatcher.api.rate_limit import CallerDep
from dispatcher.api.routing import NOT_FOUND, resource_router
from dispatcher.api.schemas import CursorPage, Envelope, Field, WireModel, envelope
from dispatcher.lifecycle.suppressions import filtered, lift
from dispatcher.runtime.resources import database
from models import ChannelType, Suppression

router: APIRouter = resource_router(prefix="/v1/suppressions", tag="Suppressions")


class SuppressionAnswer(WireModel):
    id: str = Field(alias="_id")
    channel: str
    address: str
    reason: str
    source_delivery_id: str | None = Field(alias="_sourceDeliveryId")
    created_at: str


class Lifted(WireModel):
    id: str = Field(alias="_id")
    lifted: bool


def render(row: Suppression) -> SuppressionAnswer:
    return SuppressionAnswer(
        _id=str(row.id), channel=row.channel_type.value, address=row.address, reason=row.reason,
        _sourceDeliveryId=str(row.source_delivery_id) if row.source_delivery_id else None,
        created_at=row.created_at.isoformat(),
    )  # fmt: skip


@router.get("", response_model=CursorPage[SuppressionAnswer])
def list_suppressions(
    *,
    caller: CallerDep,
    after: str | None = None,
    before: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    order_direction: Annotated[Literal["ASC", "DESC"], Query(alias="orderDirection")] = "DESC",
    include_cursor: Annotated[bool, Query(alias="includeCursor")] = False,
    channel: Literal["email", "sms"] | None = None,
    address: Annotated[str | None, Query(max_length=320)] = None,
) -> dict[str, Any]:
    """The organisation's suppressed addresses, newest first by default."""
    query = filtered(
        caller.organisation_id,
        channel=ChannelType(channel) if channel else None,
        address=address,
    )
    page = PageRequest(after, before, limit, order_direction, include_cursor)
    with database().session() as session:
        return keyset_page(
            session, query, sort=Suppression.created_at, row_id=Suppression.id, page=page,
            render=render,
        )  # fmt: skip


@router.delete("/{suppressionId}", response_model=Envelope[Lifted], responses=NOT_FOUND)
def lift_suppression(
    suppression_id: Annotated[str, Path(alias="suppressionId", max_length=100)],
    caller: CallerDep,
) -> dict[str, Any]:
    """Lift a suppression: the address is sent to again."""
    try:
        key = uuid.UUID(suppression_id)
    except ValueError:
        raise NotFoundError("suppression not found") from None
    if not lift(caller.organisation_id, key):
        raise NotFoundError("suppression not found")
    return envelope(Lifted(_id=str(key), lifted=True))
