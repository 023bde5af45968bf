"""workflow versions: ``workflows.version``/``deleted_at``, versioned step rows, and the version
each notification was triggered with

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 05:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _version() -> sa.Column[int]:
    return sa.Column("version", sa.Integer(), server_default="1", nullable=False)


def upgrade() -> None:
    with op.batch_alter_table("workflows") as batch_op:
        batch_op.add_column(_version())
        batch_op.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("workflow_steps") as batch_op:
        batch_op.add_column(_version())
        batch_op.drop_constraint(op.f("uq_workflow_steps_workflow_id_position"), type_="unique")
        batch_op.create_unique_constraint(
            op.f("uq_workflow_steps_workflow_id_version_position"),
            ["workflow_id", "version", "position"],
        )
    with op.batch_alter_table("notifications") as batch_op:
        batch_op.add_column(
            sa.Column("workflow_version", sa.Integer(), server_default="1", nullable=False)
        )


def downgrade() -> None:
    # Earlier versions' steps have no place in the old schema: only the current ones stay.
    op.execute(
        "DELETE FROM workflow_steps WHERE version <> "
        "(SELECT version FROM workflows WHERE workflows.id = workflow_steps.workflow_id)"
    )
    with op.batch_alter_table("notifications") as batch_op:
        batch_op.drop_column("workflow_version")
    with op.batch_alter_table("workflow_steps") as batch_op:
        batch_op.drop_constraint(
            op.f("uq_workflow_steps_workflow_id_version_position"), type_="unique"
        )
        batch_op.create_unique_constraint(
            op.f("uq_workflow_steps_workflow_id_position"), ["workflow_id", "position"]
        )
        batch_op.drop_column("version")
    with op.batch_alter_table("workflows") as batch_op:
        batch_op.drop_column("deleted_at")
        batch_op.drop_column("version")
