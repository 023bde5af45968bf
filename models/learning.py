"""Flows, courses, lessons assigned inside them, and progress through a flow's steps."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Mutable, Row, Tenant, enum_column
from models.types import utcnow


class ProgressStatus(enum.StrEnum):
    NOT_STARTED = "Not Started"
    IN_PROGRESS = "In Progress"
    COMPLETED = "Completed"
    BLOCKED = "Blocked"
    SKIPPED = "Skipped"


class Flow(Row, Mutable, Tenant, Base):
    __tablename__ = "flows"

    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    steps: Mapped[list[Any]] = mapped_column(default=list)


class Course(Row, Mutable, Tenant, Base):
    __tablename__ = "courses"

    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    flow_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("flows.id", ondelete="SET NULL"))


class Lesson(Row, Mutable, Tenant, Base):
    """A lesson assignment: who (user or agent) takes which step of which flow or course."""

    __tablename__ = "lessons"

    flow_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("flows.id", ondelete="CASCADE"))
    course_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("courses.id", ondelete="CASCADE")
    )
    step_name: Mapped[str | None] = mapped_column(String(200))
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    agent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    role: Mapped[str | None] = mapped_column(String(100))
    assigned_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    assigned_at: Mapped[datetime] = mapped_column(default=utcnow)


class FlowProgress(Row, Mutable, Tenant, Base):
    """One row per (flow, step, user or agent): its status, updated in place."""

    __tablename__ = "flow_progress"

    flow_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("flows.id", ondelete="CASCADE"), index=True
    )
    step_name: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    agent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    status: Mapped[ProgressStatus] = mapped_column(enum_column(ProgressStatus, "progress_status"))
    notes: Mapped[str | None] = mapped_column(Text)
