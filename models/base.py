"""Declarative base and the columns every table shares."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Enum, ForeignKey, MetaData, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from models.ids import new_row_id
from models.types import JSONType, UTCDateTime, utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        dict[str, Any]: JSONType,
        list[Any]: JSONType,
        datetime: UTCDateTime(),
        uuid.UUID: Uuid(),
    }


def enum_column(enum_class: type[enum.StrEnum], name: str) -> Enum:
    """A string column limited to an enum's values (CHECK constraint, no native type)."""
    return Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        validate_strings=True,
        length=max(len(member.value) for member in enum_class),
        values_callable=lambda members: [member.value for member in members],
    )


class Row:
    """``id``, ``meta`` and ``created_at``: on every table."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_row_id)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Mutable:
    """``updated_at``: on tables whose rows change after creation."""

    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Tenant:
    """``organisation_id``: on every row that belongs to an organisation."""

    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )


class LeadingTenant:
    """``organisation_id`` on a table whose composite indexes lead with it: an index of its
    own would be one more to write on every insert, and the planner, while the table's
    statistics still say it is small, takes it for a lookup by the composite key and then scans
    the organisation's every row."""

    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE")
    )
