"""Log search and error groups (issue: logs and errors).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

Log records gain their session, exception, error group and source file. Full-text search uses
each database's own engine over the same words: SQLite an FTS5 table with the log table as its
external content, kept by triggers; PostgreSQL a generated ``tsvector`` column with a GIN index,
and a trigram index (``pg_trgm``) for substring search when the extension can be had. Both index
the message, attributes and exception text, the first 100,000 characters of each, split into words
of letters and digits (PostgreSQL's text is first stripped of every other character, so its
parser finds the words FTS5's ``unicode61`` tokenizer finds). Error groups, the hashes that find
them, their per-minute counts, affected users and samples get tables of their own.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LOG_COLUMNS = (
    ("session_id", sa.String),
    ("exception_type", sa.String),
    ("exception", sa.Text),
    ("error_group", sa.CHAR(32)),
    ("source", sa.Text),
)
_PARTIAL_INDEXES = ("session_id", "error_group")
_FIELDS = ("message", "attributes", "exception")
_SEARCHED = 100_000


def _fields(row: str) -> str:
    return ", ".join(f"substr({row}.{field}, 1, {_SEARCHED})" for field in _FIELDS)


_SQLITE_SEARCH = (
    "CREATE VIRTUAL TABLE wk_logs_search USING fts5("
    f"{', '.join(_FIELDS)}, content='wk_logs', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER wk_logs_search_insert AFTER INSERT ON wk_logs BEGIN "
    f"INSERT INTO wk_logs_search (rowid, {', '.join(_FIELDS)}) VALUES (new.id, {_fields('new')}); "
    "END",
    "CREATE TRIGGER wk_logs_search_delete AFTER DELETE ON wk_logs BEGIN "
    f"INSERT INTO wk_logs_search (wk_logs_search, rowid, {', '.join(_FIELDS)}) "
    f"VALUES ('delete', old.id, {_fields('old')}); END",
    # The logs already stored, as the insert trigger would have indexed them.
    f"INSERT INTO wk_logs_search (rowid, {', '.join(_FIELDS)}) "
    f"SELECT id, {_fields('wk_logs')} FROM wk_logs",
)
_SQLITE_UNSEARCH = (
    "DROP TRIGGER IF EXISTS wk_logs_search_insert",
    "DROP TRIGGER IF EXISTS wk_logs_search_delete",
    "DROP TABLE IF EXISTS wk_logs_search",
)

_WORDS = " || ' ' || ".join(f"left(coalesce({field}, ''), {_SEARCHED})" for field in _FIELDS)
_POSTGRESQL_SEARCH = (
    "ALTER TABLE wk_logs ADD COLUMN search tsvector GENERATED ALWAYS AS "
    f"(to_tsvector('simple'::regconfig, regexp_replace({_WORDS}, '[^[:alnum:]]+', ' ', 'g'))) "
    "STORED",
    "CREATE INDEX ix_wk_logs_search ON wk_logs USING gin (search)",
)
_TRIGRAM_SCHEMA = (
    "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
    "WHERE e.extname = 'pg_trgm'"
)


def _trigram_schema() -> str | None:
    """The schema holding pg_trgm, installing it into ``public`` if it is missing and may be.

    Never into the store's own schema: dropping that schema would take the extension, and every
    other schema's trigram index, with it. Without the extension, substring search still works,
    by scanning the logs of the range asked for.
    """
    bind = op.get_bind()
    schema = bind.execute(sa.text(_TRIGRAM_SCHEMA)).scalar()
    if schema is not None:
        return str(schema)
    savepoint = bind.begin_nested()
    try:
        bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public"))
    except sa.exc.DBAPIError:
        savepoint.rollback()
        return None
    savepoint.commit()
    return "public"


def _add_search() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in _SQLITE_SEARCH:
            op.execute(statement)
        return
    for statement in _POSTGRESQL_SEARCH:
        op.execute(statement)
    schema = _trigram_schema()
    if schema is not None:
        quoted = op.get_bind().dialect.identifier_preparer.quote_schema(schema)
        op.execute(
            "CREATE INDEX ix_wk_logs_message_trgm ON wk_logs "
            f"USING gin (message {quoted}.gin_trgm_ops)"
        )


def _drop_search() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in _SQLITE_UNSEARCH:
            op.execute(statement)
        return
    op.execute("DROP INDEX IF EXISTS ix_wk_logs_message_trgm")
    op.execute("DROP INDEX IF EXISTS ix_wk_logs_search")
    op.execute("ALTER TABLE wk_logs DROP COLUMN IF EXISTS search")


def upgrade() -> None:
    for name, column_type in _LOG_COLUMNS:
        op.add_column("wk_logs", sa.Column(name, column_type))
    for name in _PARTIAL_INDEXES:
        condition = sa.text(f"{name} IS NOT NULL")
        op.create_index(
            f"ix_wk_logs_{name}_time",
            "wk_logs",
            [name, "time"],
            sqlite_where=condition,
            postgresql_where=condition,
        )
    _add_search()
    op.create_table(
        "wk_error_groups",
        sa.Column("fingerprint", sa.CHAR(32), nullable=False),
        sa.Column("grouping_version", sa.Integer, nullable=False),
        sa.Column("source", sa.String, nullable=False),
        sa.Column("basis", sa.String, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("error_type", sa.String),
        sa.Column("culprit", sa.Text),
        sa.Column("frames", sa.Text),
        sa.Column("first_seen", sa.Double, nullable=False),
        sa.Column("last_seen", sa.Double, nullable=False),
        sa.Column("total", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("status_changed", sa.Double),
        sa.PrimaryKeyConstraint("fingerprint", name="pk_wk_error_groups"),
        postgresql_with={"fillfactor": 70},
    )
    op.create_index("ix_wk_error_groups_last_seen", "wk_error_groups", ["last_seen"])
    op.create_table(
        "wk_error_fingerprints",
        sa.Column("fingerprint", sa.CHAR(32), nullable=False),
        sa.Column("group_id", sa.CHAR(32), nullable=False),
        sa.Column("grouping_version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("fingerprint", name="pk_wk_error_fingerprints"),
    )
    op.create_index("ix_wk_error_fingerprints_group_id", "wk_error_fingerprints", ["group_id"])
    op.create_table(
        "wk_error_counts",
        sa.Column("group_id", sa.CHAR(32), nullable=False),
        sa.Column("bucket", sa.BigInteger, nullable=False),
        sa.Column("org_id", sa.String, nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("group_id", "bucket", "org_id", name="pk_wk_error_counts"),
        postgresql_with={"fillfactor": 70},
    )
    op.create_index("ix_wk_error_counts_bucket", "wk_error_counts", ["bucket"])
    op.create_table(
        "wk_error_users",
        sa.Column("group_id", sa.CHAR(32), nullable=False),
        sa.Column("user_id", sa.String, nullable=False),
        sa.Column("last_seen", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("group_id", "user_id", name="pk_wk_error_users"),
    )
    op.create_index("ix_wk_error_users_last_seen", "wk_error_users", ["last_seen"])
    op.create_index("ix_wk_error_users_user_id", "wk_error_users", ["user_id"])
    op.create_table(
        "wk_error_samples",
        sa.Column("group_id", sa.CHAR(32), nullable=False),
        sa.Column("bucket", sa.BigInteger, nullable=False),
        sa.Column("time", sa.Double, nullable=False),
        sa.Column("trace_id", sa.CHAR(32)),
        sa.Column("span_id", sa.CHAR(16)),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("user_id", sa.String),
        sa.Column("org_id", sa.String),
        sa.Column("session_id", sa.String),
        sa.PrimaryKeyConstraint("group_id", "bucket", name="pk_wk_error_samples"),
    )
    op.create_index("ix_wk_error_samples_time", "wk_error_samples", ["time"])


def downgrade() -> None:
    for table in (
        "wk_error_samples",
        "wk_error_users",
        "wk_error_counts",
        "wk_error_fingerprints",
        "wk_error_groups",
    ):
        op.drop_table(table)
    _drop_search()
    for name in _PARTIAL_INDEXES:
        op.drop_index(f"ix_wk_logs_{name}_time", table_name="wk_logs")
    with op.batch_alter_table("wk_logs") as batch:
        for name, _ in reversed(_LOG_COLUMNS):
            batch.drop_column(name)
