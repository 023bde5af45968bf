"""Workflows: the ordered steps a notification trigger runs through, in versions.

Changing a workflow's steps writes a new set of :class:`WorkflowStep` rows under the next
``version`` and moves :attr:`Workflow.version` to it; the rows of earlier versions stay. A
delivery names its step row (``deliveries.step_id``), so a notification is sent with the steps
it was triggered with however often the workflow changes meanwhile, and the worker reads the
step by id as before. :attr:`Workflow.steps` holds the current version's steps only (one joined
read on the trigger path, as before versions).
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, and_
from sqlalchemy.orm import Mapped, foreign, mapped_column, relationship

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
    #: An HTTP request whose JSON answer is merged into the payload of the steps after it.
    FETCH = "fetch"


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
    #: The version triggers use now; each change of the steps makes the next one.
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    #: Deleted workflows keep their row (their notifications refer to it) but give up their key.
    deleted_at: Mapped[datetime | None]

    #: The current version's steps, in order. Read-only: steps are written as rows of a version
    #: (:func:`dispatcher.actions.workflows.write_version`), never through this collection.
    steps: Mapped[list[WorkflowStep]] = relationship(
        primaryjoin=lambda: and_(
            Workflow.id == foreign(WorkflowStep.workflow_id),
            Workflow.version == WorkflowStep.version,
        ),
        order_by="WorkflowStep.position",
        viewonly=True,
    )


class WorkflowStep(Row, Mutable, Tenant, Base):
    __tablename__ = "workflow_steps"
    __table_args__ = (UniqueConstraint("workflow_id", "version", "position"),)

    workflow_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    #: The workflow version this step belongs to.
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    position: Mapped[int]
    kind: Mapped[StepKind] = mapped_column(enum_column(StepKind, "step_kind"))
    #: Channel templates: ``subject``, ``body``, ``html``, ``title`` ... (Jinja2, sandboxed).
    template: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: Conditions on payload or subscriber data; all must hold for the step to run.
    conditions: Mapped[list[Any]] = mapped_column(default=list)
    #: Step options: delay ``seconds``, digest ``window_seconds``, throttle ``limit``/``window``/
    #: ``key``, fetch ``url``/``method``/... (:mod:`dispatcher.sending.fetch`), provider
    #: ``options``, per-locale ``translations``.
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
