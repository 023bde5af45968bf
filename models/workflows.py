"""Workflows: the ordered steps a notification trigger runs through."""

from __future__ import annotations

import enum
import uuid
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, Mutable, Row, Tenant, enum_column


class StepKind(enum.StrEnum):
    EMAIL = "email"
    SMS = "sms"
    CHAT = "chat"
    PUSH = "push"
    WEBHOOK = "webhook"
    IN_APP = "in_app"
    DELAY = "delay"
    DIGEST = "digest"
    THROTTLE = "throttle"


class Workflow(Row, Mutable, Tenant, Base):
    __tablename__ = "workflows"
    __table_args__ = (UniqueConstraint("organisation_id", "key"),)

    #: The identifier producers trigger by (``password-reset``), unique per organisation.
    key: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    #: Critical workflows use their own queue and ignore subscriber opt-outs.
    critical: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)

    steps: Mapped[list[WorkflowStep]] = relationship(
        back_populates="workflow",
        order_by="WorkflowStep.position",
        cascade="all, delete-orphan",
    )


class WorkflowStep(Row, Mutable, Tenant, Base):
    __tablename__ = "workflow_steps"
    __table_args__ = (UniqueConstraint("workflow_id", "position"),)

    workflow_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    position: Mapped[int]
    kind: Mapped[StepKind] = mapped_column(enum_column(StepKind, "step_kind"))
    #: Channel templates: ``subject``, ``body``, ``html``, ``title`` ... (Jinja2, sandboxed).
    template: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: Conditions on payload or subscriber data; all must hold for the step to run.
    conditions: Mapped[list[Any]] = mapped_column(default=list)
    #: Step options: delay ``seconds``, digest ``window_seconds``, throttle ``limit``/``window``/
    #: ``key``, provider ``options``, per-locale ``translations``.
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)

    workflow: Mapped[Workflow] = relationship(back_populates="steps")
