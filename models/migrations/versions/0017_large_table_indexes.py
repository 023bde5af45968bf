"""indexes for large tables: due deliveries only, notifications newest first

``ix_deliveries_due`` (status, next_attempt_at) answered the sweeper's and the claim's lookups
of queued, retrying and stale sending rows, and held an entry for every finished delivery too:
each write-back added one, so the index grew with the table while the lookups need only the
work in flight. It is now partial, on those three statuses.

``ix_notifications_recent`` (organisation_id, created_at, id): the activity API lists an
organisation's notifications newest first; without it PostgreSQL read and sorted every row of
the organisation for each page (2 s at a million rows).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 19:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: As ``models.delivery.DUE_INDEX_WHERE`` when written (a migration keeps its own copy).
WHERE = "status IN ('queued', 'retrying', 'sending')"


def upgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notifications_recent", ["organisation_id", "created_at", "id"], unique=False
        )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_due")
        batch_op.create_index(
            "ix_deliveries_due",
            ["status", "next_attempt_at"],
            unique=False,
            postgresql_where=sa.text(WHERE),
            sqlite_where=sa.text(WHERE),
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_due")
        batch_op.create_index("ix_deliveries_due", ["status", "next_attempt_at"], unique=False)
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_recent")
