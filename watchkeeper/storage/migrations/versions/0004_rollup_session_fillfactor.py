"""Rollup and session rows, updated by every batch, get room on their PostgreSQL pages.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

Each batch updates the rollup rows of its minutes and hours (per name, organisation, model and
user) and the rows of its sessions. On a full page (PostgreSQL's default fill factor, 100) an
update writes the new version elsewhere and a new entry into each of the table's indexes; with
30 % of each page kept free, nearly every update stays on its page (a HOT update), touches no
index, and the page's old versions are pruned without waiting for a vacuum. Only pages written
from now on are filled less: nothing is rewritten, and the lock is brief. SQLite has no fill
factor, so nothing changes there.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("wk_rollups", "wk_sessions")
FILLFACTOR = 70


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    if _postgresql():
        for table in _TABLES:
            op.execute(f"ALTER TABLE {table} SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    if _postgresql():
        for table in _TABLES:
            op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
