"""delivery lifecycle: applied provider events, the reported status, suppressions

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 04:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import SchemaItem

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REPORTED = ("delivered", "opened", "clicked", "bounced", "complained", "undelivered")
CHANNELS = ("email", "sms", "chat", "push", "webhook", "in_app")


def _enum(values: Sequence[str], name: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True)


def _row_columns(table: str) -> list[SchemaItem]:
    """``id``, ``meta``, ``created_at`` and ``organisation_id``, as every tenant table has."""
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "meta",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f(f"fk_{table}_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
    ]


def upgrade() -> None:
    op.create_table(
        "delivery_events",
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("integration_id", sa.Uuid(), nullable=True),
        sa.Column("kind", _enum(REPORTED, "reported_status"), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("bounce", sa.String(length=10), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        *_row_columns("delivery_events"),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_delivery_events_delivery_id_deliveries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integrations.id"],
            name=op.f("fk_delivery_events_integration_id_integrations"),
            ondelete="SET NULL",
        ),
        sa.UniqueConstraint(
            "integration_id", "event_id", name=op.f("uq_delivery_events_integration_id_event_id")
        ),
    )
    with op.batch_alter_table("delivery_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_delivery_events_delivery", ["delivery_id", "occurred_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_delivery_events_organisation_id"), ["organisation_id"], unique=False
        )
    op.create_table(
        "suppressions",
        sa.Column("channel_type", _enum(CHANNELS, "channel_type"), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("source_delivery_id", sa.Uuid(), nullable=True),
        *_row_columns("suppressions"),
        sa.ForeignKeyConstraint(
            ["source_delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_suppressions_source_delivery_id_deliveries"),
            ondelete="SET NULL",
        ),
        sa.UniqueConstraint(
            "organisation_id",
            "channel_type",
            "address",
            name=op.f("uq_suppressions_organisation_id_channel_type_address"),
        ),
    )
    with op.batch_alter_table("suppressions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_suppressions_organisation_id"), ["organisation_id"], unique=False
        )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reported_status", _enum(REPORTED, "reported_status"), nullable=True)
        )
        batch_op.add_column(sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_deliveries_provider_message",
            ["integration_id", "provider_message_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_provider_message")
        batch_op.drop_constraint(batch_op.f("ck_deliveries_reported_status"), type_="check")
        batch_op.drop_column("reported_at")
        batch_op.drop_column("reported_status")
    with op.batch_alter_table("suppressions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_suppressions_organisation_id"))
    op.drop_table("suppressions")
    with op.batch_alter_table("delivery_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_events_organisation_id"))
        batch_op.drop_index("ix_delivery_events_delivery")
    op.drop_table("delivery_events")
