"""fetch steps: the ``fetch`` step kind on workflow steps and deliveries

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 09:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STEP_KINDS = ("email", "sms", "chat", "push", "webhook", "in_app", "delay", "digest", "throttle")


def _kinds(table: str, column: str, values: Sequence[str]) -> None:
    """Limit ``column`` to ``values`` (none is longer than the column already is)."""
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
    _kinds("workflow_steps", "kind", (*STEP_KINDS, "fetch"))
    _kinds("deliveries", "step_kind", (*STEP_KINDS, "fetch"))


def downgrade() -> None:
    op.execute("DELETE FROM deliveries WHERE step_kind = 'fetch'")
    op.execute("DELETE FROM workflow_steps WHERE kind = 'fetch'")
    _kinds("deliveries", "step_kind", STEP_KINDS)
    _kinds("workflow_steps", "kind", STEP_KINDS)
