"""Spans, logs, metric points and rollups.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Written out rather than derived from ``schema.py`` so that this revision keeps creating exactly
what it created when it shipped, whatever later revisions change.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
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
        "wk_spans",
        _id(),
        sa.Column("trace_id", sa.CHAR(32), nullable=False),
        sa.Column("span_id", sa.CHAR(16), nullable=False),
        sa.Column("parent_id", sa.CHAR(16)),
        sa.Column("kind", sa.String, nullable=False),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("operation", sa.String),
        sa.Column("start_time", sa.Double, nullable=False),
        sa.Column("duration", sa.Double, nullable=False),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("error_type", sa.String),
        sa.Column("error_message", sa.Text),
        sa.Column("service", sa.String, nullable=False),
        sa.Column("instance", sa.String, nullable=False),
        sa.Column("user_id", sa.String),
        sa.Column("org_id", sa.String),
        sa.Column("session_id", sa.String),
        sa.Column("model", sa.String),
        sa.Column("input_tokens", sa.BigInteger),
        sa.Column("output_tokens", sa.BigInteger),
        sa.Column("cost", sa.Double),
        sa.Column("attributes", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_wk_spans"),
    )
    op.create_index("ix_wk_spans_start_time", "wk_spans", ["start_time"])
    op.create_index("ix_wk_spans_trace_id", "wk_spans", ["trace_id"])
    op.create_index("ix_wk_spans_kind_name_start_time", "wk_spans", ["kind", "name", "start_time"])
    op.create_index("ix_wk_spans_user_id_start_time", "wk_spans", ["user_id", "start_time"])
    op.create_index("ix_wk_spans_org_id_start_time", "wk_spans", ["org_id", "start_time"])
    op.create_index("ix_wk_spans_session_id_start_time", "wk_spans", ["session_id", "start_time"])

    op.create_table(
        "wk_logs",
        _id(),
        sa.Column("time", sa.Double, nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("logger", sa.String, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("trace_id", sa.CHAR(32)),
        sa.Column("span_id", sa.CHAR(16)),
        sa.Column("service", sa.String, nullable=False),
        sa.Column("instance", sa.String, nullable=False),
        sa.Column("user_id", sa.String),
        sa.Column("org_id", sa.String),
        sa.Column("attributes", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_wk_logs"),
    )
    op.create_index("ix_wk_logs_time", "wk_logs", ["time"])
    op.create_index("ix_wk_logs_trace_id", "wk_logs", ["trace_id"])

    op.create_table(
        "wk_metric_points",
        _id(),
        sa.Column("time", sa.Double, nullable=False),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("kind", sa.String, nullable=False),
        sa.Column("value", sa.Double, nullable=False),
        sa.Column("service", sa.String, nullable=False),
        sa.Column("instance", sa.String, nullable=False),
        sa.Column("org_id", sa.String),
        sa.Column("attributes", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_wk_metric_points"),
    )
    op.create_index("ix_wk_metric_points_name_time", "wk_metric_points", ["name", "time"])

    op.create_table(
        "wk_rollups",
        sa.Column("level", sa.CHAR(1), nullable=False),
        sa.Column("bucket", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String, nullable=False),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("dimension", sa.String, nullable=False),
        sa.Column("value", sa.String, nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("errors", sa.BigInteger, nullable=False),
        sa.Column("input_tokens", sa.BigInteger, nullable=False),
        sa.Column("output_tokens", sa.BigInteger, nullable=False),
        sa.Column("cost", sa.Double, nullable=False),
        sa.Column("cost_unknown", sa.BigInteger, nullable=False),
        sa.Column("duration_sum", sa.Double, nullable=False),
        sa.Column("sketch", sa.LargeBinary),
        sa.PrimaryKeyConstraint(
            "level", "bucket", "kind", "name", "dimension", "value", name="pk_wk_rollups"
        ),
    )
    op.create_index(
        "ix_wk_rollups_dimension_level_bucket", "wk_rollups", ["dimension", "level", "bucket"]
    )


def downgrade() -> None:
    op.drop_table("wk_rollups")
    op.drop_table("wk_metric_points")
    op.drop_table("wk_logs")
    op.drop_table("wk_spans")
