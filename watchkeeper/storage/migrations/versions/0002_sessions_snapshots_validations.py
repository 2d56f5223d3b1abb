"""Sessions, context snapshots and validation results.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02

Written out rather than derived from ``schema.py`` (see 0001). Sessions are backfilled from the
spans already stored, so upgrading does not empty the sessions page; spans stored before this
revision carry no session marks, so no backfilled session has ended, and ``max()`` stands in
for "the first user seen" (a session has one user in practice).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.Column[int]:
    return sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        sa.Identity(),
        primary_key=True,
    )


_BACKFILL_SESSIONS = """
INSERT INTO wk_sessions (
    session_id, user_id, org_id, first_seen, last_seen, ended_at,
    spans, errors, input_tokens, output_tokens, cost
)
SELECT
    session_id, max(user_id), max(org_id), min(start_time), max(start_time + duration), NULL,
    count(*), sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END),
    coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0), coalesce(sum(cost), 0)
FROM wk_spans
WHERE session_id IS NOT NULL AND session_id <> ''
GROUP BY session_id
"""


def upgrade() -> None:
    op.create_table(
        "wk_sessions",
        sa.Column("session_id", sa.String, nullable=False),
        sa.Column("user_id", sa.String),
        sa.Column("org_id", sa.String),
        sa.Column("first_seen", sa.Double, nullable=False),
        sa.Column("last_seen", sa.Double, nullable=False),
        sa.Column("ended_at", sa.Double),
        sa.Column("spans", sa.BigInteger, nullable=False),
        sa.Column("errors", sa.BigInteger, nullable=False),
        sa.Column("input_tokens", sa.BigInteger, nullable=False),
        sa.Column("output_tokens", sa.BigInteger, nullable=False),
        sa.Column("cost", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("session_id", name="pk_wk_sessions"),
    )
    op.create_index("ix_wk_sessions_last_seen", "wk_sessions", ["last_seen"])
    op.create_index("ix_wk_sessions_user_id_last_seen", "wk_sessions", ["user_id", "last_seen"])
    op.create_index("ix_wk_sessions_org_id_last_seen", "wk_sessions", ["org_id", "last_seen"])
    op.execute(_BACKFILL_SESSIONS)

    op.create_table(
        "wk_snapshots",
        _id(),
        sa.Column("time", sa.Double, nullable=False),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("trace_id", sa.CHAR(32)),
        sa.Column("span_id", sa.CHAR(16)),
        sa.Column("session_id", sa.String),
        sa.Column("user_id", sa.String),
        sa.Column("org_id", sa.String),
        sa.PrimaryKeyConstraint("id", name="pk_wk_snapshots"),
    )
    op.create_index("ix_wk_snapshots_session_id_time", "wk_snapshots", ["session_id", "time"])
    op.create_index("ix_wk_snapshots_trace_id", "wk_snapshots", ["trace_id"])
    op.create_index("ix_wk_snapshots_time", "wk_snapshots", ["time"])

    op.create_table(
        "wk_validations",
        _id(),
        sa.Column("time", sa.Double, nullable=False),
        sa.Column("validator", sa.String, nullable=False),
        sa.Column("target", sa.String, nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("observed_number", sa.Double),
        sa.Column("observed_text", sa.Text),
        sa.Column("expected", sa.Text, nullable=False),
        sa.Column("severity", sa.String, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("trace_id", sa.CHAR(32)),
        sa.Column("span_id", sa.CHAR(16)),
        sa.Column("session_id", sa.String),
        sa.Column("user_id", sa.String),
        sa.Column("org_id", sa.String),
        sa.PrimaryKeyConstraint("id", name="pk_wk_validations"),
    )
    op.create_index("ix_wk_validations_time", "wk_validations", ["time"])
    op.create_index("ix_wk_validations_passed_time", "wk_validations", ["passed", "time"])
    op.create_index("ix_wk_validations_session_id_time", "wk_validations", ["session_id", "time"])


def downgrade() -> None:
    op.drop_table("wk_validations")
    op.drop_table("wk_snapshots")
    op.drop_table("wk_sessions")
