"""redundant indexes: ``organisation_id`` alone where a composite index leads with it

Notifications, deliveries and subscribers each had an index on ``organisation_id`` beside
composite ones starting with it, and deliveries one on ``notification_id`` beside the unique
``(notification_id, step_position)``. Every trigger wrote them for nothing, and while a table's
statistics said it was small the planner answered a lookup by the composite key through the
single-column index, scanning the organisation's every row.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 09:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DROPPED = [
    ("notifications", "ix_notifications_organisation_id", ["organisation_id"]),
    ("deliveries", "ix_deliveries_organisation_id", ["organisation_id"]),
    ("deliveries", "ix_deliveries_notification_id", ["notification_id"]),
    ("subscribers", "ix_subscribers_organisation_id", ["organisation_id"]),
]


def upgrade() -> None:
    for table, name, _ in DROPPED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)


def downgrade() -> None:
    for table, name, columns in DROPPED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(name, columns, unique=False)
