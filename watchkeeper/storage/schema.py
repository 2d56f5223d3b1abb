"""The store's tables. Every name starts with ``wk_`` because the store may share a database.

Times are epoch seconds in double precision (UTC): cheap to compare, identical in both
databases, and what the recorder already holds. Identifiers are lowercase hex.
"""

from __future__ import annotations

from sqlalchemy import (
    CHAR,
    BigInteger,
    Boolean,
    Column,
    Double,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

VERSION_TABLE = "wk_alembic_version"
UPDATED_FILLFACTOR = 70
"""How full PostgreSQL fills the pages of tables whose rows every batch updates (percent)."""

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    }
)


def _id() -> Column[int]:
    # SQLite only auto-numbers an INTEGER PRIMARY KEY (its rowid alias), never a BIGINT one.
    return Column("id", BigInteger().with_variant(Integer, "sqlite"), Identity(), primary_key=True)


spans = Table(
    "wk_spans",
    metadata,
    _id(),
    Column("trace_id", CHAR(32), nullable=False),
    Column("span_id", CHAR(16), nullable=False),
    Column("parent_id", CHAR(16)),
    Column("kind", String, nullable=False),
    Column("name", String, nullable=False),
    Column("operation", String),
    Column("start_time", Double, nullable=False),
    Column("duration", Double, nullable=False),
    Column("status", String, nullable=False),
    Column("error_type", String),
    Column("error_message", Text),
    Column("service", String, nullable=False),
    Column("instance", String, nullable=False),
    Column("user_id", String),
    Column("org_id", String),
    Column("session_id", String),
    Column("model", String),
    Column("input_tokens", BigInteger),
    Column("output_tokens", BigInteger),
    Column("cost", Double),
    Column("attributes", Text),
    Index(None, "start_time"),
    Index(None, "trace_id"),
    Index(None, "kind", "name", "start_time"),
)

# Partial: a span without a user, organisation or session (most requests of many apps) adds
# nothing to these indexes, and every lookup is by a value, which implies IS NOT NULL.
for _identity in (spans.c.user_id, spans.c.org_id, spans.c.session_id):
    Index(
        None,
        _identity,
        spans.c.start_time,
        sqlite_where=_identity.is_not(None),
        postgresql_where=_identity.is_not(None),
    )

logs = Table(
    "wk_logs",
    metadata,
    _id(),
    Column("time", Double, nullable=False),
    Column("level", Integer, nullable=False),
    Column("logger", String, nullable=False),
    Column("message", Text, nullable=False),
    Column("trace_id", CHAR(32)),
    Column("span_id", CHAR(16)),
    Column("service", String, nullable=False),
    Column("instance", String, nullable=False),
    Column("user_id", String),
    Column("org_id", String),
    Column("attributes", Text),
    Index(None, "time"),
    Index(None, "trace_id"),
)

metric_points = Table(
    "wk_metric_points",
    metadata,
    _id(),
    Column("time", Double, nullable=False),
    Column("name", String, nullable=False),
    Column("kind", String, nullable=False),
    Column("value", Double, nullable=False),
    Column("service", String, nullable=False),
    Column("instance", String, nullable=False),
    Column("org_id", String),
    Column("attributes", Text),
    Index(None, "name", "time"),
)

rollups = Table(
    "wk_rollups",
    metadata,
    Column("level", CHAR(1), nullable=False),
    Column("bucket", BigInteger, nullable=False),
    Column("kind", String, nullable=False),
    Column("name", String, nullable=False),
    Column("dimension", String, nullable=False),
    Column("value", String, nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("errors", BigInteger, nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("cost", Double, nullable=False),
    Column("cost_unknown", BigInteger, nullable=False),
    Column("duration_sum", Double, nullable=False),
    Column("sketch", LargeBinary),
    PrimaryKeyConstraint("level", "bucket", "kind", "name", "dimension", "value"),
    Index(None, "dimension", "level", "bucket"),
    # Every batch updates its minutes' and hours' rows: free room keeps updates on their page
    # (HOT), with no new index entries (migration 0004).
    postgresql_with={"fillfactor": UPDATED_FILLFACTOR},
)

sessions = Table(
    "wk_sessions",
    metadata,
    Column("session_id", String, primary_key=True),
    Column("user_id", String),
    Column("org_id", String),
    Column("first_seen", Double, nullable=False),
    Column("last_seen", Double, nullable=False),
    Column("ended_at", Double),
    Column("spans", BigInteger, nullable=False),
    Column("errors", BigInteger, nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("cost", Double, nullable=False),
    Index(None, "last_seen"),
    Index(None, "user_id", "last_seen"),
    Index(None, "org_id", "last_seen"),
    postgresql_with={"fillfactor": UPDATED_FILLFACTOR},
)

snapshots = Table(
    "wk_snapshots",
    metadata,
    _id(),
    Column("time", Double, nullable=False),
    Column("name", String, nullable=False),
    Column("data", Text, nullable=False),
    Column("trace_id", CHAR(32)),
    Column("span_id", CHAR(16)),
    Column("session_id", String),
    Column("user_id", String),
    Column("org_id", String),
    Index(None, "session_id", "time"),
    Index(None, "trace_id"),
    Index(None, "time"),  # retention deletes by time
)

validations = Table(
    "wk_validations",
    metadata,
    _id(),
    Column("time", Double, nullable=False),
    Column("validator", String, nullable=False),
    Column("target", String, nullable=False),
    Column("passed", Boolean, nullable=False),
    Column("observed_number", Double),
    Column("observed_text", Text),
    Column("expected", Text, nullable=False),
    Column("severity", String, nullable=False),
    Column("message", Text, nullable=False),
    Column("trace_id", CHAR(32)),
    Column("span_id", CHAR(16)),
    Column("session_id", String),
    Column("user_id", String),
    Column("org_id", String),
    Index(None, "time"),
    Index(None, "passed", "time"),
    Index(None, "session_id", "time"),
)
