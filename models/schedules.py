"""Scheduled triggers: a workflow fired for stored recipients on a cron schedule."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Mutable, Row, Tenant


class Schedule(Row, Mutable, Tenant, Base):
    """Fires ``workflow_key`` for ``to`` at every time ``cron`` matches in ``timezone``."""

    __tablename__ = "schedules"
    __table_args__ = (Index("ix_schedules_due", "active", "next_fire_at"),)

    workflow_key: Mapped[str] = mapped_column(String(100))
    #: Five cron fields (minute hour day-of-month month day-of-week) or an alias (``@daily``).
    cron: Mapped[str] = mapped_column(String(200))
    #: IANA name (``Europe/London``): the cron fields are read as wall-clock time there.
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    #: Trigger targets as stored: subscriber ids, inline subscribers, ``{"topic": key}``.
    to: Mapped[list[Any]] = mapped_column(default=list)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    active: Mapped[bool] = mapped_column(default=True)
    #: The next due time (UTC); ``None`` once deactivated.
    next_fire_at: Mapped[datetime | None]
    last_fired_at: Mapped[datetime | None]
    #: Why the last firing was refused (unknown workflow or subscriber, ...), if it was.
    last_error: Mapped[str | None] = mapped_column(Text)
