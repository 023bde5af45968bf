"""workflow features: the ``throttle`` step kind, ``throttle_windows`` counters, email layouts

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 05:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STEP_KINDS = ("email", "sms", "chat", "push", "webhook", "in_app", "delay", "digest")
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _kinds(table: str, column: str, values: Sequence[str]) -> None:
    """Widen ``column`` to the longest kind and limit it to ``values``."""
    allowed = ", ".join(f"'{value}'" for value in values)
    with op.batch_alter_table(table) as batch_op:
        batch_op.drop_constraint(op.f(f"ck_{table}_step_kind"), type_="check")
        batch_op.alter_column(
            column,
            type_=sa.String(length=max(map(len, values))),
            existing_nullable=False,
        )
        batch_op.create_check_constraint(
            op.f(f"ck_{table}_step_kind"), sa.text(f"{column} IN ({allowed})")
        )


def upgrade() -> None:
    _kinds("workflow_steps", "kind", (*STEP_KINDS, "throttle"))
    _kinds("deliveries", "step_kind", (*STEP_KINDS, "throttle"))
    op.create_table(
        "throttle_windows",
        sa.Column("step_id", sa.Uuid(), nullable=False),
        sa.Column("subscriber_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("meta", _JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"],
            name=op.f("fk_throttle_windows_organisation_id_organisations"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["step_id"], ["workflow_steps.id"],
            name=op.f("fk_throttle_windows_step_id_workflow_steps"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_id"], ["subscribers.id"],
            name=op.f("fk_throttle_windows_subscriber_id_subscribers"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_throttle_windows")),
        sa.UniqueConstraint(
            "step_id", "subscriber_id", "key",
            name=op.f("uq_throttle_windows_step_id_subscriber_id_key"),
        ),
    )  # fmt: skip
    with op.batch_alter_table("throttle_windows") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_throttle_windows_organisation_id"), ["organisation_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_throttle_windows_subscriber_id"), ["subscriber_id"], unique=False
        )

    op.create_table(
        "email_layouts",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("logo_url", sa.String(length=2048), nullable=True),
        sa.Column("colors", _JSON, nullable=False),
        sa.Column("footer", sa.Text(), nullable=True),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("meta", _JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"],
            name=op.f("fk_email_layouts_organisation_id_organisations"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_layouts")),
        sa.UniqueConstraint(
            "organisation_id", "key", name=op.f("uq_email_layouts_organisation_id_key")
        ),
    )  # fmt: skip
    with op.batch_alter_table("email_layouts") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_email_layouts_organisation_id"), ["organisation_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("email_layouts")
    op.drop_table("throttle_windows")
    op.execute("DELETE FROM deliveries WHERE step_kind = 'throttle'")
    op.execute("DELETE FROM workflow_steps WHERE kind = 'throttle'")
    _kinds("deliveries", "step_kind", STEP_KINDS)
    _kinds("workflow_steps", "kind", STEP_KINDS)
