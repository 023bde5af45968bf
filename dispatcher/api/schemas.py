"""The wire models every router builds on: Novu's spelling, its envelope and its pagination.

* :class:`WireModel`: fields named in Python (``subscriber_id``) travel in camelCase
  (``subscriberId``); ids that Novu prefixes with an underscore are declared with an explicit
  alias (``Field(alias="_id")``). Requests accept either spelling and ignore unknown fields
  (an SDK newer than this server sends fields it does not know: never refuse those).
* :class:`Envelope` / :func:`envelope`: ``{"data": X}``, which the SDKs unwrap to X.
* :class:`CursorPage` / :func:`cursor_page`: Novu's cursor lists, ``{data, next, previous,
  totalCount, totalCountCapped}``; a list answer keeps its other keys, so the SDK does not
  unwrap it.
* :class:`SubscriberProfile`: a subscriber's profile fields as Novu sends them, in a subscriber
  request and inline in a trigger.
* :class:`SubscriberRecordIds`: the ids Novu puts on a record of a subscriber's (a message, a
  notification), underscore-prefixed.
* Tags of wire unions start with ``~`` (``Tag("~topic")``): the 422 handler leaves them out of
  field paths, so a bad recipient is reported as ``to.1.topicKey``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from pydantic import AliasGenerator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from dispatcher.api.errors import UnprocessableError

T = TypeVar("T")
Row = TypeVar("Row")


class WireModel(BaseModel):
    """Base of request and answer models: camelCase on the wire, unknown request fields ignored."""

    model_config = ConfigDict(
        alias_generator=AliasGenerator(alias=to_camel),
        populate_by_name=True,
        extra="ignore",
    )


# The profile fields of a subscriber request and of a trigger's inline subscriber (no docstring:
# it would become the OpenAPI schema's description). Novu's ``avatar`` is accepted and not stored.
class SubscriberProfile(WireModel):
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    avatar: str | None = None
    locale: str | None = None
    timezone: str | None = None
    data: dict[str, Any] | None = None


# The underscore-prefixed ids of a record addressed to a subscriber (a message, a notification);
# ``_environmentId`` is the organisation (this project has no environments). No docstring: it
# would become the description of the subclasses' OpenAPI schemas.
class SubscriberRecordIds(WireModel):
    id: str = Field(alias="_id")
    environment_id: str = Field(alias="_environmentId")
    organization_id: str = Field(alias="_organizationId")
    subscriber_id: str = Field(alias="_subscriberId")


class Envelope(WireModel, Generic[T]):
    data: T


def envelope(value: Any) -> dict[str, Any]:
    """``{"data": value}``; models inside are dumped under their wire names."""
    return {"data": _dump(value)}


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, list | tuple):
        return [_dump(item) for item in value]
    return value


class CursorPage(WireModel, Generic[T]):
    data: list[T]
    next: str | None = None
    previous: str | None = None
    total_count: int = 0
    #: True when ``total_count`` stopped counting at the cap (large collections).
    total_count_capped: bool = False


#: Rows counted at most for ``totalCount``.
TOTAL_COUNT_CAP = 50_000

#: The last page number a page-numbered list accepts: its OFFSET (page * limit) stays far within
#: PostgreSQL's bigint, which a larger number overflows (a 500 instead of a page).
MAX_PAGE = 10_000_000


def encode_cursor(position: Sequence[Any]) -> str:
    """An opaque cursor for a keyset position (the sort values of the row it points after)."""
    raw = json.dumps(list(position), separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, field: str = "after") -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise UnprocessableError({field: ["not a cursor this server issued"]}) from None
    if not isinstance(position, list):
        raise UnprocessableError({field: ["not a cursor this server issued"]})
    return position


def cursor_page(
    rows: Sequence[Row],
    *,
    limit: int,
    position: Callable[[Row], Sequence[Any]],
    render: Callable[[Row], Any],
    total_count: int,
    backwards: bool = False,
    had_cursor: bool = False,
) -> dict[str, Any]:
    """A page from ``limit + 1`` rows read in keyset order (the extra one says whether there is
    more). ``position`` gives a row's sort values; ``backwards`` when read with ``before``
    (rows then come nearest first and are put back in order here)."""
    more = len(rows) > limit
    page = list(rows[:limit])
    if backwards:
        page.reverse()
    first = encode_cursor(position(page[0])) if page else None
    last = encode_cursor(position(page[-1])) if page else None
    if backwards:
        next_cursor, previous = (last if had_cursor else None), (first if more else None)
    else:
        next_cursor, previous = (last if more else None), (first if had_cursor else None)
    return {
        "data": [_dump(render(row)) for row in page],
        "next": next_cursor,
        "previous": previous,
        "totalCount": min(total_count, TOTAL_COUNT_CAP),
        "totalCountCapped": total_count > TOTAL_COUNT_CAP,
    }


def wire_tag(name: str) -> str:
    """A union tag the error handler leaves out of field paths."""
    return f"~{name}"


__all__ = [
    "MAX_PAGE",
    "TOTAL_COUNT_CAP",
    "CursorPage",
    "Envelope",
    "Field",
    "SubscriberProfile",
    "SubscriberRecordIds",
    "WireModel",
    "cursor_page",
    "decode_cursor",
    "encode_cursor",
    "envelope",
    "wire_tag",
]
