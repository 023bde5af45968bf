"""The ledger of executed actions: a redelivered action returns its first result."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Row, Tenant


class ActionRun(Row, Tenant, Base):
    """``id`` is the Celery task id, written in the same transaction as the action's effect."""

    __tablename__ = "action_runs"

    action: Mapped[str] = mapped_column(String(100))
    result: Mapped[dict[str, Any]]
