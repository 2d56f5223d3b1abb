"""Sessions keyed by their id within their organisation.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

Two organisations' equal session ids are two sessions: ``wk_sessions`` is keyed by
(session_id, org_id). A key's column cannot be NULL, so "no organisation" is stored as ``''``
(as ``wk_error_counts`` does); rows stored before keep their organisation. The session id
leads the key because a session is looked up by its id (in every organisation, for a super
admin). SQLite rebuilds the table (batch mode); PostgreSQL alters it in place, so its fill
factor (migration 0004) stays.

Walking down merges each id's rows across organisations into one, as the store kept them
before: totals added, the first organisation and user in id order kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MERGED = """
CREATE TABLE wk_sessions_merged AS
SELECT
    session_id, min(user_id) AS user_id, min(nullif(org_id, '')) AS org_id,
    min(first_seen) AS first_seen, max(last_seen) AS last_seen, max(ended_at) AS ended_at,
    sum(spans) AS spans, sum(errors) AS errors, sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens, sum(cost) AS cost
FROM wk_sessions
GROUP BY session_id
"""
_COLUMNS = (
    "session_id, user_id, org_id, first_seen, last_seen, ended_at, "
    "spans, errors, input_tokens, output_tokens, cost"
)


def _key(session_key: list[str], org_id_nullable: bool) -> None:
    with op.batch_alter_table("wk_sessions") as batch:
        # PostgreSQL keeps a key's columns NOT NULL: the key goes before org_id may be NULL.
        batch.drop_constraint("pk_wk_sessions", type_="primary")
        batch.alter_column("org_id", existing_type=sa.String, nullable=org_id_nullable)
        batch.create_primary_key("pk_wk_sessions", session_key)


def upgrade() -> None:
    op.execute("UPDATE wk_sessions SET org_id = '' WHERE org_id IS NULL")
    _key(["session_id", "org_id"], org_id_nullable=False)


def downgrade() -> None:
    op.execute(_MERGED)
    op.execute("DELETE FROM wk_sessions")
    _key(["session_id"], org_id_nullable=True)
    op.execute(f"INSERT INTO wk_sessions ({_COLUMNS}) SELECT {_COLUMNS} FROM wk_sessions_merged")
    op.drop_table("wk_sessions_merged")
