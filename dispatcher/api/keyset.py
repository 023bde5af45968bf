"""Keyset pages of one table for Novu's cursor lists (``after``/``before``/``limit``/
``orderDirection``/``includeCursor``), sorted by a timestamp column with the row id as the tie
breaker, so a page is one indexed range read however deep it is.

:class:`CursorQuery` (and :class:`SortedCursorQuery`, which adds ``orderBy``) are the query
parameters of such a list, declared once for every router that serves one (``Depends()``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, Query
from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

from dispatcher.api.errors import UnprocessableError
from dispatcher.api.schemas import TOTAL_COUNT_CAP, cursor_page, decode_cursor

#: Novu's default and largest page.
DEFAULT_LIMIT = 10
MAX_LIMIT = 100

Direction = Literal["ASC", "DESC"]
#: The timestamps a sorted list orders by (Novu's ``orderBy``).
OrderBy = Literal["createdAt", "updatedAt"]


@dataclass(frozen=True)
class PageRequest:
    after: str | None = None
    before: str | None = None
    limit: int = DEFAULT_LIMIT
    direction: Direction = "DESC"
    include_cursor: bool = False


@dataclass(frozen=True)
class CursorQuery:
    """The query parameters of a cursor list (the names and defaults are Novu's)."""

    after: str | None = None
    before: str | None = None
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT
    order_direction: Annotated[Direction, Query(alias="orderDirection")] = "DESC"
    include_cursor: Annotated[bool, Query(alias="includeCursor")] = False

    def page(self) -> PageRequest:
        return PageRequest(
            self.after, self.before, self.limit, self.order_direction, self.include_cursor
        )


@dataclass(frozen=True)
class SortedCursorQuery(CursorQuery):
    """A cursor list the caller may sort by its creation or its last change."""

    order_by: Annotated[OrderBy, Query(alias="orderBy")] = "createdAt"


CursorQueryDep = Annotated[CursorQuery, Depends()]
SortedCursorQueryDep = Annotated[SortedCursorQuery, Depends()]


def keyset_page(
    session: Session,
    query: Select[Any],
    *,
    sort: InstrumentedAttribute[datetime],
    row_id: InstrumentedAttribute[uuid.UUID],
    page: PageRequest,
    render: Callable[[Any], Any],
) -> dict[str, Any]:
    """One page of ``query`` (a select of one entity, already filtered by organisation)."""
    if page.after and page.before:
        raise UnprocessableError({"before": ["give either after or before, not both"]})
    field = "before" if page.before else "after"
    cursor = page.before or page.after
    total = session.scalar(
        select(func.count()).select_from(query.limit(TOTAL_COUNT_CAP + 1).subquery())
    )
    descending = (page.direction == "DESC") != bool(page.before)
    if cursor:
        at = _position(cursor, field)
        key = tuple_(sort, row_id)
        if descending:
            query = query.where(key <= at if page.include_cursor else key < at)
        else:
            query = query.where(key >= at if page.include_cursor else key > at)
    order = (sort.desc(), row_id.desc()) if descending else (sort.asc(), row_id.asc())
    rows = session.scalars(query.order_by(*order).limit(page.limit + 1)).all()
    return cursor_page(
        rows,
        limit=page.limit,
        position=lambda row: [getattr(row, sort.key).isoformat(), str(getattr(row, row_id.key))],
        render=render,
        total_count=total or 0,
        backwards=bool(page.before),
        had_cursor=bool(cursor),
    )


def _position(cursor: str, field: str) -> tuple[datetime, uuid.UUID]:
    position = decode_cursor(cursor, field)
    try:
        moment, row_id = position
        return datetime.fromisoformat(moment), uuid.UUID(row_id)
    except (TypeError, ValueError):
        raise UnprocessableError({field: ["not a cursor this server issued"]}) from None
