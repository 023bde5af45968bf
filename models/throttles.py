"""Throttle windows: how many notifications a throttle step let through, per subscriber and key."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Row, Tenant


class ThrottleWindow(Row, Tenant, Base):
    """One counter per (throttle step, subscriber, key): the notifications counted since
    ``window_start``; a count past the step's window starts again at one."""

    __tablename__ = "throttle_windows"
    __table_args__ = (UniqueConstraint("step_id", "subscriber_id", "key"),)

    step_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workflow_steps.id", ondelete="CASCADE"))
    subscriber_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    #: The step's ``key`` template rendered over the trigger's payload ('' without one).
    key: Mapped[str] = mapped_column(String(200), default="")
    window_start: Mapped[datetime]
    count: Mapped[int]
