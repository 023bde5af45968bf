"""outbound webhooks: ``webhook_endpoints``, ``webhook_events`` and their attempts

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 16:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVENT_TYPES = (
    "message.sent", "message.delivered", "message.failed", "message.bounced", "message.opened",
    "message.clicked", "message.read", "message.seen", "notification.cancelled",
)  # fmt: skip
EVENT_STATUSES = ("queued", "sending", "sent", "retrying", "failed")
ATTEMPT_OUTCOMES = (
    "sent", "retryable", "ambiguous", "integration_error", "recipient_error", "skipped",
    "unconfirmed",
)  # fmt: skip
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _within(column: str, values: Sequence[str]) -> sa.TextClause:
    allowed = ", ".join(f"'{value}'" for value in values)
    return sa.text(f"{column} IN ({allowed})")


def _row_columns(*, mutable: bool) -> list[sa.Column[object]]:
    columns: list[sa.Column[object]] = [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("meta", _JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    ]
    if mutable:
        columns.append(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False))
    columns.append(sa.Column("organisation_id", sa.Uuid(), nullable=False))
    return columns


def _tenant(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["organisation_id"], ["organisations.id"],
        name=op.f(f"fk_{table}_organisation_id_organisations"), ondelete="CASCADE",
    )  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("event_types", _JSON, nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        *_row_columns(mutable=True),
        _tenant("webhook_endpoints"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    with op.batch_alter_table("webhook_endpoints") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_endpoints_organisation_id"), ["organisation_id"], unique=False
        )
    op.create_table(
        "webhook_events",
        sa.Column("endpoint_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=22), nullable=False),
        sa.Column("payload", _JSON, nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claim_token", sa.Uuid(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        *_row_columns(mutable=True),
        sa.CheckConstraint(
            _within("type", EVENT_TYPES), name=op.f("ck_webhook_events_webhook_event_type")
        ),
        sa.CheckConstraint(
            _within("status", EVENT_STATUSES), name=op.f("ck_webhook_events_webhook_event_status")
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_id"], ["webhook_endpoints.id"],
            name=op.f("fk_webhook_events_endpoint_id_webhook_endpoints"), ondelete="CASCADE",
        ),
        _tenant("webhook_events"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_events")),
        sa.UniqueConstraint(
            "endpoint_id", "event_id", name=op.f("uq_webhook_events_endpoint_id_event_id")
        ),
    )  # fmt: skip
    with op.batch_alter_table("webhook_events") as batch_op:
        batch_op.create_index("ix_webhook_events_due", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_webhook_events_endpoint_id"), ["endpoint_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_webhook_events_organisation_id"), ["organisation_id"], unique=False
        )
    op.create_table(
        "webhook_event_attempts",
        sa.Column("webhook_event_id", sa.Uuid(), nullable=False),
        sa.Column("outcome", sa.String(length=17), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Double(), nullable=True),
        sa.Column("error_class", sa.String(length=100), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        *_row_columns(mutable=False),
        sa.CheckConstraint(
            _within("outcome", ATTEMPT_OUTCOMES),
            name=op.f("ck_webhook_event_attempts_attempt_outcome"),
        ),
        _tenant("webhook_event_attempts"),
        sa.ForeignKeyConstraint(
            ["webhook_event_id"], ["webhook_events.id"],
            name=op.f("fk_webhook_event_attempts_webhook_event_id_webhook_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_event_attempts")),
    )  # fmt: skip
    with op.batch_alter_table("webhook_event_attempts") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_event_attempts_organisation_id"),
            ["organisation_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_webhook_event_attempts_webhook_event_id"),
            ["webhook_event_id"],
            unique=False,
        )


def downgrade() -> None:
    op.drop_table("webhook_event_attempts")
    op.drop_table("webhook_events")
    op.drop_table("webhook_endpoints")
