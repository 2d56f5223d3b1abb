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

NO_ORGANISATION = ""
"""A session's ``org_id`` when it has none (a key's column cannot be NULL)."""

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
    Column("session_id", String, nullable=False),
    Column("user_id", String),
    # Part of the key, so never NULL: NO_ORGANISATION stands for none (migration 0008).
    Column("org_id", String, nullable=False),
    Column("first_seen", Double, nullable=False),
    Column("last_seen", Double, nullable=False),
    Column("ended_at", Double),
    Column("spans", BigInteger, nullable=False),
    Column("errors", BigInteger, nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("cost", Double, nullable=False),
    # Session id first: a session is looked up by its id, in any organisation for a super admin.
    PrimaryKeyConstraint("session_id", "org_id"),
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

# -- Access control: stored API keys, dashboard sessions, the audit log (migration 0006) ------

api_keys = Table(
    "wk_api_keys",
    metadata,
    # The key's public id: also the lookup part of the token (``wk_<key_id>_<secret>``).
    Column("key_id", String(32), primary_key=True),
    Column("secret_hash", CHAR(64), nullable=False),
    Column("name", String, nullable=False),
    Column("role", String, nullable=False),
    Column("org_id", String),
    Column("user_id", String),
    Column("rate_limit", Integer),
    Column("created_at", Double, nullable=False),
    Column("created_by", String),
    Column("last_used_at", Double),
    Column("expires_at", Double),
    Column("revoked_at", Double),
    Index(None, "org_id"),
)

dashboard_sessions = Table(
    "wk_dashboard_sessions",
    metadata,
    Column("session_id", String(32), primary_key=True),
    Column("secret_hash", CHAR(64), nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("expires_at", Double, nullable=False),
    Column("revoked_at", Double),
    Index(None, "key_id"),
)

access_secrets = Table(
    "wk_access_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String, nullable=False),
)

audit_entries = Table(
    "wk_audit_entries",
    metadata,
    _id(),
    Column("time", Double, nullable=False),
    Column("key_id", String),
    Column("role", String),
    Column("org_id", String),
    Column("action", String, nullable=False),
    Column("resource", String),
    Column("before", Text),
    Column("after", Text),
    Column("outcome", String, nullable=False),
    Column("client", String),
    Column("user_agent", String),
    Column("trace_id", CHAR(32)),
    Index(None, "time"),
    Index(None, "org_id", "time"),
    # The newest entry of one action on one resource: what a starting process compares its
    # settings with (0010).
    Index(None, "action", "resource", "id"),
)

# -- Alerts: rules, alerts and their history, silences, notifications, the lease (0007) ------

alert_rules = Table(
    "wk_alert_rules",
    metadata,
    Column("name", String, primary_key=True),
    Column("definition", Text, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("source", String, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    Column("updated_by", String),
)

alerts = Table(
    "wk_alerts",
    metadata,
    _id(),
    Column("fingerprint", String, nullable=False),
    Column("rule", String, nullable=False),
    Column("labels", Text, nullable=False),
    Column("state", String, nullable=False),
    Column("severity", String, nullable=False),
    Column("value", Double),
    Column("peak_value", Double),
    Column("threshold", Double),
    Column("pending_since", Double, nullable=False),
    Column("fired_at", Double),
    Column("clear_since", Double),
    Column("resolved_at", Double),
    Column("evaluated_at", Double, nullable=False),
    Column("acked_at", Double),
    Column("acked_by", String),
    Column("ack_note", Text),
    Column("tier", Integer, nullable=False),
    Column("notified_at", Double),
    Index(None, "fingerprint", "state"),
    Index(None, "state"),
    Index(None, "resolved_at"),
)

alert_events = Table(
    "wk_alert_events",
    metadata,
    _id(),
    Column("alert_id", BigInteger, nullable=False),
    Column("time", Double, nullable=False),
    Column("event", String, nullable=False),
    Column("severity", String),
    Column("value", Double),
    Column("actor", String),
    Column("note", Text),
    Index(None, "alert_id", "time"),
)

alert_silences = Table(
    "wk_alert_silences",
    metadata,
    _id(),
    Column("matchers", Text, nullable=False),
    Column("starts_at", Double, nullable=False),
    Column("ends_at", Double, nullable=False),
    Column("created_by", String, nullable=False),
    Column("comment", Text, nullable=False),
    Index(None, "ends_at"),
)

alert_notifications = Table(
    "wk_alert_notifications",
    metadata,
    _id(),
    Column("alert_id", BigInteger, nullable=False),
    Column("channel", String, nullable=False),
    Column("group_key", String, nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("status", String, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("error", Text),
    Column("sent_at", Double),
    Index(None, "status", "created_at"),
    Index(None, "alert_id"),
)

alert_lease = Table(
    "wk_alert_lease",
    metadata,
    Column("name", String, primary_key=True),
    Column("holder", String, nullable=False),
    Column("expires_at", Double, nullable=False),
    Column("term", BigInteger, nullable=False),
)

# --- Logs and errors (migration 0005) ---------------------------------------------------------
# Log columns added by 0005; the full-text index (SQLite FTS5 table and its triggers, PostgreSQL
# tsvector column with GIN and pg_trgm indexes) is dialect-specific and made by the migration
# alone: SEARCH_OBJECTS names it for the comparison of migrations with this file.
for _column in (
    Column("session_id", String),
    Column("exception_type", String),
    Column("exception", Text),
    Column("error_group", CHAR(32)),
    Column("source", Text),
):
    logs.append_column(_column)
for _column in (logs.c.session_id, logs.c.error_group):
    Index(
        None,
        _column,
        logs.c.time,
        sqlite_where=_column.is_not(None),
        postgresql_where=_column.is_not(None),
    )

LOG_SEARCH_TABLE = "wk_logs_search"
"""SQLite: the FTS5 table over wk_logs (external content, kept by triggers)."""
LOG_SEARCH_COLUMN = "search"
"""PostgreSQL: wk_logs' generated tsvector column."""
SEARCH_OBJECTS = frozenset(
    {
        LOG_SEARCH_TABLE,
        *(f"{LOG_SEARCH_TABLE}_{part}" for part in ("data", "idx", "content", "docsize", "config")),
        LOG_SEARCH_COLUMN,
        "ix_wk_logs_search",
        "ix_wk_logs_message_trgm",
    }
)
"""Search objects made by migration 0005 outside this metadata (see :func:`outside_metadata`)."""


def outside_metadata(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's ``include_name`` hook: whether an object is described here (the search
    objects are not)."""
    return name not in SEARCH_OBJECTS


error_groups = Table(
    "wk_error_groups",
    metadata,
    Column("fingerprint", CHAR(32), primary_key=True),
    Column("grouping_version", Integer, nullable=False),
    Column("source", String, nullable=False),
    Column("basis", String, nullable=False),
    Column("title", Text, nullable=False),
    Column("error_type", String),
    Column("culprit", Text),
    Column("frames", Text),
    Column("first_seen", Double, nullable=False),
    Column("last_seen", Double, nullable=False),
    Column("total", BigInteger, nullable=False),
    Column("status", String, nullable=False),
    Column("status_changed", Double),
    Index(None, "last_seen"),
    postgresql_with={"fillfactor": UPDATED_FILLFACTOR},
)

error_fingerprints = Table(
    "wk_error_fingerprints",
    metadata,
    Column("fingerprint", CHAR(32), primary_key=True),
    Column("group_id", CHAR(32), nullable=False),
    Column("grouping_version", Integer, nullable=False),
    Index(None, "group_id"),
)
"""Every hash seen for a group, by grouping version: a later version's hashes find old groups."""

error_counts = Table(
    "wk_error_counts",
    metadata,
    Column("group_id", CHAR(32), nullable=False),
    Column("bucket", BigInteger, nullable=False),
    Column("org_id", String, nullable=False),
    Column("count", BigInteger, nullable=False),
    PrimaryKeyConstraint("group_id", "bucket", "org_id"),
    Index(None, "bucket"),
    postgresql_with={"fillfactor": UPDATED_FILLFACTOR},
)
"""Occurrences per group, minute and organisation ("" for none): windows, sparklines, spikes."""

error_users = Table(
    "wk_error_users",
    metadata,
    Column("group_id", CHAR(32), nullable=False),
    Column("user_id", String, nullable=False),
    Column("last_seen", Double, nullable=False),
    PrimaryKeyConstraint("group_id", "user_id"),
    Index(None, "last_seen"),
    Index(None, "user_id"),
)

error_samples = Table(
    "wk_error_samples",
    metadata,
    Column("group_id", CHAR(32), nullable=False),
    Column("bucket", BigInteger, nullable=False),
    Column("time", Double, nullable=False),
    Column("trace_id", CHAR(32)),
    Column("span_id", CHAR(16)),
    Column("message", Text, nullable=False),
    Column("detail", Text),
    Column("user_id", String),
    Column("org_id", String),
    Column("session_id", String),
    PrimaryKeyConstraint("group_id", "bucket"),
    Index(None, "time"),
)
"""The first occurrence of each group in each minute, as an example to open."""

# -- Written batches (0011) ---------------------------------------------------------------------

written_batches = Table(
    "wk_written_batches",
    metadata,
    Column("batch_id", BigInteger, primary_key=True, autoincrement=False),
    Column("written_at", Double, nullable=False),
    Index(None, "written_at"),
)
"""The id of every batch written, in the batch's own transaction: a batch retried after its
commit's answer was lost finds its id here and is not written twice. Kept as long as spans."""
