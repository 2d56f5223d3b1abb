"""Alert rules, alerts, their history, notifications and the evaluator's lease.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.Column[int]:
    return sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        sa.Identity(),
        primary_key=True,
    )


def upgrade() -> None:
    op.create_table(
        "wk_alert_rules",
        sa.Column("name", sa.String, nullable=False),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("source", sa.String, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.Column("updated_by", sa.String),
        sa.PrimaryKeyConstraint("name", name="pk_wk_alert_rules"),
    )
    op.create_table(
        "wk_alerts",
        _id(),
        sa.Column("fingerprint", sa.String, nullable=False),
        sa.Column("rule", sa.String, nullable=False),
        sa.Column("labels", sa.Text, nullable=False),
        sa.Column("state", sa.String, nullable=False),
        sa.Column("severity", sa.String, nullable=False),
        sa.Column("value", sa.Double),
        sa.Column("peak_value", sa.Double),
        sa.Column("threshold", sa.Double),
        sa.Column("pending_since", sa.Double, nullable=False),
        sa.Column("fired_at", sa.Double),
        sa.Column("clear_since", sa.Double),
        sa.Column("resolved_at", sa.Double),
        sa.Column("evaluated_at", sa.Double, nullable=False),
        sa.Column("acked_at", sa.Double),
        sa.Column("acked_by", sa.String),
        sa.Column("ack_note", sa.Text),
        sa.Column("tier", sa.Integer, nullable=False),
        sa.Column("notified_at", sa.Double),
    )
    op.create_index("ix_wk_alerts_fingerprint_state", "wk_alerts", ["fingerprint", "state"])
    op.create_index("ix_wk_alerts_state", "wk_alerts", ["state"])
    op.create_index("ix_wk_alerts_resolved_at", "wk_alerts", ["resolved_at"])
    op.create_table(
        "wk_alert_events",
        _id(),
        sa.Column("alert_id", sa.BigInteger, nullable=False),
        sa.Column("time", sa.Double, nullable=False),
        sa.Column("event", sa.String, nullable=False),
        sa.Column("severity", sa.String),
        sa.Column("value", sa.Double),
        sa.Column("actor", sa.String),
        sa.Column("note", sa.Text),
    )
    op.create_index("ix_wk_alert_events_alert_id_time", "wk_alert_events", ["alert_id", "time"])
    op.create_table(
        "wk_alert_silences",
        _id(),
        sa.Column("matchers", sa.Text, nullable=False),
        sa.Column("starts_at", sa.Double, nullable=False),
        sa.Column("ends_at", sa.Double, nullable=False),
        sa.Column("created_by", sa.String, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
    )
    op.create_index("ix_wk_alert_silences_ends_at", "wk_alert_silences", ["ends_at"])
    op.create_table(
        "wk_alert_notifications",
        _id(),
        sa.Column("alert_id", sa.BigInteger, nullable=False),
        sa.Column("channel", sa.String, nullable=False),
        sa.Column("group_key", sa.String, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("sent_at", sa.Double),
    )
    op.create_index(
        "ix_wk_alert_notifications_status_created_at",
        "wk_alert_notifications",
        ["status", "created_at"],
    )
    op.create_index("ix_wk_alert_notifications_alert_id", "wk_alert_notifications", ["alert_id"])
    op.create_table(
        "wk_alert_lease",
        sa.Column("name", sa.String, nullable=False),
        sa.Column("holder", sa.String, nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
        sa.Column("term", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_wk_alert_lease"),
    )


def downgrade() -> None:
    for table in (
        "wk_alert_lease",
        "wk_alert_notifications",
        "wk_alert_silences",
        "wk_alert_events",
        "wk_alerts",
        "wk_alert_rules",
    ):
        op.drop_table(table)
