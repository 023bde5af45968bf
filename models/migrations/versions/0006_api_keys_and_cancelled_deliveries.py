"""api keys and cancelled deliveries

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 01:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("queued", "sending", "sent", "retrying", "failed", "skipped")
CHECK = "ck_deliveries_delivery_status"


def _status_type(values: Sequence[str]) -> sa.Enum:
    return sa.Enum(*values, name="delivery_status", native_enum=False, create_constraint=True)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
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
            name=op.f("fk_api_keys_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("digest", name=op.f("uq_api_keys_digest")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_api_keys_organisation_id"), ["organisation_id"], unique=False
        )
    _change_statuses(STATUSES, (*STATUSES, "cancelled"))


def downgrade() -> None:
    op.execute(
        "UPDATE deliveries SET status = 'failed', last_error = 'cancelled' "
        "WHERE status = 'cancelled'"
    )
    _change_statuses((*STATUSES, "cancelled"), STATUSES)
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_organisation_id"))
    op.drop_table("api_keys")


def _change_statuses(old: Sequence[str], new: Sequence[str]) -> None:
    """The status CHECK constraint (and the column's width, ``cancelled`` being the longest value)
    replaced; on PostgreSQL widening a VARCHAR rewrites nothing."""
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f(CHECK), type_="check")
        batch_op.alter_column(
            "status",
            existing_type=sa.String(length=max(map(len, old))),
            type_=sa.String(length=max(map(len, new))),
            existing_nullable=False,
        )
        batch_op.create_check_constraint("delivery_status", sa.column("status").in_(new))
