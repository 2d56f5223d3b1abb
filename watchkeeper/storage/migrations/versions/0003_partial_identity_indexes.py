"""Span indexes by user, organisation and session hold only spans that have one.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

Every lookup through them is by a value, which implies ``IS NOT NULL``, so both databases use the
partial indexes for the same queries, and a span without identity no longer costs three index
insertions. Rebuilding takes a lock on ``wk_spans`` for as long as the build runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("user_id", "org_id", "session_id")


def _rebuild(partial: bool) -> None:
    for column in _COLUMNS:
        name = f"ix_wk_spans_{column}_start_time"
        condition = sa.text(f"{column} IS NOT NULL") if partial else None
        op.drop_index(name, table_name="wk_spans")
        op.create_index(
            name,
            "wk_spans",
            [column, "start_time"],
            sqlite_where=condition,
            postgresql_where=condition,
        )


def upgrade() -> None:
    _rebuild(partial=True)


def downgrade() -> None:
    _rebuild(partial=False)
