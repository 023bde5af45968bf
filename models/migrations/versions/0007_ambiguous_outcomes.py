"""ambiguous outcomes: the ``unknown`` delivery status and the ``ambiguous`` attempt outcome

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 01:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DELIVERY_STATUSES = ("queued", "sending", "sent", "retrying", "failed", "skipped", "cancelled")
ATTEMPT_OUTCOMES = ("sent", "retryable", "integration_error", "recipient_error", "skipped")


def _limit(table: str, constraint: str, column: str, values: Sequence[str]) -> None:
    """Replace the CHECK constraint that limits ``column`` to an enum's ``values``."""
    allowed = ", ".join(f"'{value}'" for value in values)
    with op.batch_alter_table(table) as batch_op:
        batch_op.drop_constraint(op.f(f"ck_{table}_{constraint}"), type_="check")
        batch_op.create_check_constraint(
            op.f(f"ck_{table}_{constraint}"), sa.text(f"{column} IN ({allowed})")
        )


def upgrade() -> None:
    _limit("deliveries", "delivery_status", "status", (*DELIVERY_STATUSES, "unknown"))
    _limit("delivery_attempts", "attempt_outcome", "outcome", (*ATTEMPT_OUTCOMES, "ambiguous"))


def downgrade() -> None:
    op.execute("UPDATE delivery_attempts SET outcome = 'retryable' WHERE outcome = 'ambiguous'")
    op.execute("UPDATE deliveries SET status = 'failed' WHERE status = 'unknown'")
    _limit("delivery_attempts", "attempt_outcome", "outcome", ATTEMPT_OUTCOMES)
    _limit("deliveries", "delivery_status", "status", DELIVERY_STATUSES)
