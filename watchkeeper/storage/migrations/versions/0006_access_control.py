"""Stored API keys, dashboard sessions and the audit log.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

Written out rather than derived from ``schema.py`` (see 0001); the same statements serve both
databases.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "wk_api_keys",
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("secret_hash", sa.CHAR(64), nullable=False),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("role", sa.String, nullable=False),
        sa.Column("org_id", sa.String),
        sa.Column("user_id", sa.String),
        sa.Column("rate_limit", sa.Integer),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("created_by", sa.String),
        sa.Column("last_used_at", sa.Double),
        sa.Column("expires_at", sa.Double),
        sa.Column("revoked_at", sa.Double),
        sa.PrimaryKeyConstraint("key_id", name="pk_wk_api_keys"),
    )
    op.create_index("ix_wk_api_keys_org_id", "wk_api_keys", ["org_id"])
    op.create_table(
        "wk_dashboard_sessions",
        sa.Column("session_id", sa.String(32), nullable=False),
        sa.Column("secret_hash", sa.CHAR(64), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
        sa.Column("revoked_at", sa.Double),
        sa.PrimaryKeyConstraint("session_id", name="pk_wk_dashboard_sessions"),
    )
    op.create_index("ix_wk_dashboard_sessions_key_id", "wk_dashboard_sessions", ["key_id"])
    op.create_table(
        "wk_access_secrets",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.String, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_wk_access_secrets"),
    )
    op.create_table(
        "wk_audit_entries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            sa.Identity(),
            nullable=False,
        ),
        sa.Column("time", sa.Double, nullable=False),
        sa.Column("key_id", sa.String),
        sa.Column("role", sa.String),
        sa.Column("org_id", sa.String),
        sa.Column("action", sa.String, nullable=False),
        sa.Column("resource", sa.String),
        sa.Column("before", sa.Text),
        sa.Column("after", sa.Text),
        sa.Column("outcome", sa.String, nullable=False),
        sa.Column("client", sa.String),
        sa.Column("user_agent", sa.String),
        sa.Column("trace_id", sa.CHAR(32)),
        sa.PrimaryKeyConstraint("id", name="pk_wk_audit_entries"),
    )
    op.create_index("ix_wk_audit_entries_time", "wk_audit_entries", ["time"])
    op.create_index("ix_wk_audit_entries_org_id_time", "wk_audit_entries", ["org_id", "time"])


def downgrade() -> None:
    op.drop_table("wk_audit_entries")
    op.drop_table("wk_access_secrets")
    op.drop_table("wk_dashboard_sessions")
    op.drop_table("wk_api_keys")
