"""browser inbox: per-organisation inbox settings; snooze, tags and actions of inbox messages

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 05:00:00.000000
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> Any:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "inbox_settings",
        sa.Column("application_identifier", sa.String(length=64), nullable=False),
        sa.Column("secrets", sa.Text(), nullable=False),
        sa.Column("cors_origins", _json(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("meta", _json(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_inbox_settings_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_settings")),
        sa.UniqueConstraint(
            "application_identifier", name=op.f("uq_inbox_settings_application_identifier")
        ),
        sa.UniqueConstraint("organisation_id", name=op.f("uq_inbox_settings_organisation_id")),
    )
    op.create_index(
        op.f("ix_inbox_settings_organisation_id"), "inbox_settings", ["organisation_id"]
    )
    with op.batch_alter_table("inbox_messages") as batch_op:
        batch_op.add_column(sa.Column("snoozed_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("tags", _json(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(
            sa.Column("actions", _json(), nullable=False, server_default=sa.text("'{}'"))
        )
        batch_op.add_column(sa.Column("completed_action", sa.String(length=20), nullable=True))
    # The defaults filled the existing rows; new rows get theirs from the model.
    with op.batch_alter_table("inbox_messages") as batch_op:
        batch_op.alter_column("tags", server_default=None)
        batch_op.alter_column("actions", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("inbox_messages") as batch_op:
        batch_op.drop_column("completed_action")
        batch_op.drop_column("actions")
        batch_op.drop_column("tags")
        batch_op.drop_column("snoozed_until")
    op.drop_index(op.f("ix_inbox_settings_organisation_id"), table_name="inbox_settings")
    op.drop_table("inbox_settings")
