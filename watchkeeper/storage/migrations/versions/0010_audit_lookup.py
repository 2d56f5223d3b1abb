"""An index for the newest audit entry of one action on one resource.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

Each process that writes the store looks up, as it starts, the newest ``configuration.changed``
and ``retention.changed`` entry of its service. Without this index the lookup walked the audit
log newest first, entry by entry, until it met one: every failed authentication and every read
since the last deploy was read on each start.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_wk_audit_entries_action_resource_id"


def upgrade() -> None:
    op.create_index(INDEX, "wk_audit_entries", ["action", "resource", "id"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name="wk_audit_entries")
