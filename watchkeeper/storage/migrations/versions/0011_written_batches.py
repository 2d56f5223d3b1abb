"""The ids of the batches written, so a batch is never written twice.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01

A write whose connection dies after PostgreSQL committed it looks failed to Watchkeeper, which
writes the batch again: its spans and every total it adds were stored twice. Each batch now
carries an id, kept through retries and the spool, and its write records the id in the same
transaction; a batch whose id is already here is skipped.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "wk_written_batches",
        sa.Column("batch_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("written_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("batch_id", name="pk_wk_written_batches"),
    )
    op.create_index("ix_wk_written_batches_written_at", "wk_written_batches", ["written_at"])


def downgrade() -> None:
    op.drop_index("ix_wk_written_batches_written_at", table_name="wk_written_batches")
    op.drop_table("wk_written_batches")
