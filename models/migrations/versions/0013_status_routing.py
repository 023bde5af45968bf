"""status-driven routing: ``delivery_watches`` and the ``unconfirmed`` attempt outcome

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 09:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ATTEMPT_OUTCOMES = (
    "sent", "retryable", "ambiguous", "integration_error", "recipient_error", "skipped",
)  # fmt: skip
WATCH_STATES = ("waiting", "delivered", "failed_over", "exhausted", "suppressed")
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _limit(values: Sequence[str]) -> None:
    """Replace the CHECK constraint that limits attempt outcomes to ``values``."""
    allowed = ", ".join(f"'{value}'" for value in values)
    with op.batch_alter_table("delivery_attempts") as batch_op:
        batch_op.drop_constraint(op.f("ck_delivery_attempts_attempt_outcome"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_delivery_attempts_attempt_outcome"), sa.text(f"outcome IN ({allowed})")
        )


def upgrade() -> None:
    _limit((*ATTEMPT_OUTCOMES, "unconfirmed"))
    allowed = ", ".join(f"'{value}'" for value in WATCH_STATES)
    op.create_table(
        "delivery_watches",
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("integration_id", sa.Uuid(), nullable=True),
        sa.Column("provider", sa.String(length=100), nullable=False),
        sa.Column("provider_message_id", sa.String(length=500), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("wait_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=11), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("meta", _JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.CheckConstraint(f"state IN ({allowed})", name=op.f("ck_delivery_watches_watch_state")),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["deliveries.id"],
            name=op.f("fk_delivery_watches_delivery_id_deliveries"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["integration_id"], ["integrations.id"],
            name=op.f("fk_delivery_watches_integration_id_integrations"), ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"],
            name=op.f("fk_delivery_watches_organisation_id_organisations"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_watches")),
    )  # fmt: skip
    with op.batch_alter_table("delivery_watches") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_delivery_watches_delivery_id"), ["delivery_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_delivery_watches_organisation_id"), ["organisation_id"], unique=False
        )
        batch_op.create_index(
            "ix_delivery_watches_message", ["integration_id", "provider_message_id"], unique=False
        )
        batch_op.create_index("ix_delivery_watches_due", ["state", "wait_until"], unique=False)


def downgrade() -> None:
    op.drop_table("delivery_watches")
    op.execute(
        "UPDATE delivery_attempts SET outcome = 'integration_error' WHERE outcome = 'unconfirmed'"
    )
    _limit(ATTEMPT_OUTCOMES)
