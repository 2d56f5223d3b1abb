"""Migrations: they build what schema.py describes, keep data, and walk down and up cleanly."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from tests.support.stores import T0, StoreTarget, batch_of, span
from watchkeeper.model.events import SessionMark, Severity, Snapshot, ValidationResult
from watchkeeper.model.query import RetainedTable, Scope, TimeRange
from watchkeeper.storage import migrate
from watchkeeper.storage.engine import write_transaction
from watchkeeper.storage.rows import prepare
from watchkeeper.storage.schema import VERSION_TABLE, metadata, outside_metadata
from watchkeeper.storage.sql_store import SqlStore
from watchkeeper.storage.sql_writer import write_batch


def _tables(store: SqlStore) -> set[str]:
    return set(inspect(store.engine).get_table_names())


def test_revisions_run_from_base_to_head() -> None:
    revisions = migrate.revisions()
    assert revisions[:2] == ["0001", "0002"]
    assert revisions[-1] == migrate.head_revision()
    assert len(set(revisions)) == len(revisions)


def test_head_matches_the_tables_in_schema_py(target: StoreTarget) -> None:
    store = SqlStore(target.engine())
    try:
        migrate.upgrade(store.engine)
        with store.engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={"version_table": VERSION_TABLE, "include_name": outside_metadata},
            )
            assert compare_metadata(context, metadata) == []
    finally:
        store.close()


def test_data_written_at_the_first_revision_survives_upgrading(target: StoreTarget) -> None:
    store = SqlStore(target.engine())
    try:
        assert migrate.current_revision(store.engine) is None
        migrate.upgrade(store.engine, migrate.revisions()[0])
        spans = [
            span(T0 + i, 0.2, user_id="u1", session_id=f"s{i % 2}", error=i == 3, input_tokens=i)
            for i in range(30)
        ]
        # Written as a 0001-era worker wrote: no session totals, error groups or batch id,
        # there were no tables for them.
        with write_transaction(store.engine) as connection:
            old = replace(batch_of(spans), sessions={}, errors={})
            write_batch(connection, store.dialect, prepare(old))

        migrate.upgrade(store.engine)

        assert migrate.current_revision(store.engine) == migrate.head_revision()
        assert store.count(RetainedTable.SPANS) == 30
        day = TimeRange(datetime.fromtimestamp(T0, UTC), datetime.fromtimestamp(T0 + 60, UTC))
        assert store.overview(day, Scope.everything())[0].count == 30
        # The sessions page is backfilled from the spans already stored.
        sessions = {s.session_id: s for s in store.sessions(day, Scope.everything()).items}
        assert sessions["s1"] == replace(
            sessions["s1"], spans=15, errors=1, input_tokens=sum(range(1, 30, 2)), user_id="u1"
        )
        assert sessions["s1"].first_seen == datetime.fromtimestamp(T0 + 1, UTC)
        assert sessions["s1"].last_seen == datetime.fromtimestamp(T0 + 29.2, UTC)
        assert (sessions["s0"].spans, sessions["s0"].errors, sessions["s0"].ended_at) == (
            15,
            0,
            None,
        )
        migrate.upgrade(store.engine)  # already at head: nothing to do, nothing lost
        assert store.count(RetainedTable.SPANS) == 30
        assert store.count(RetainedTable.SESSIONS) == 2
    finally:
        store.close()


def test_every_revision_walks_down_to_base_and_back_up(target: StoreTarget) -> None:
    store = SqlStore(target.engine())
    try:
        migrate.upgrade(store.engine)
        revisions = migrate.revisions()
        for previous in [*reversed(revisions[:-1]), "base"]:
            migrate.downgrade(store.engine, previous)
            assert migrate.current_revision(store.engine) == (
                None if previous == "base" else previous
            )
        assert _tables(store) <= {VERSION_TABLE}
        for revision in revisions:
            migrate.upgrade(store.engine, revision)
            assert migrate.current_revision(store.engine) == revision
        assert {table.name for table in metadata.sorted_tables} <= _tables(store)
        store.write(batch_of([span(T0, 0.1)]))
        assert store.count(RetainedTable.SPANS) == 1
    finally:
        store.close()


def test_data_survives_walking_down_to_0001_and_back(target: StoreTarget) -> None:
    store = SqlStore(target.engine())
    try:
        migrate.upgrade(store.engine)
        store.write(
            batch_of(
                [span(T0 + i, 0.5, session_id="s1", user_id="u1") for i in range(4)],
                snapshots=[Snapshot(T0, "ctx", {"a": 1}, session_id="s1")],
                validations=[ValidationResult(T0, "v", "t", False, 2.0, "1", Severity.ERROR)],
                session_marks=[SessionMark(T0 + 10, "s1", ended=True)],
            )
        )

        migrate.downgrade(store.engine, "0001")
        assert not {"wk_sessions", "wk_snapshots", "wk_validations"} & _tables(store)
        assert store.count(RetainedTable.SPANS) == 4

        migrate.upgrade(store.engine)
        assert store.count(RetainedTable.SPANS) == 4
        assert store.count(RetainedTable.SNAPSHOTS) == store.count(RetainedTable.VALIDATIONS) == 0
        detail = store.session("s1", Scope.everything())
        assert detail is not None
        assert (detail.session.spans, len(detail.spans)) == (4, 4)
        assert detail.session.ended_at is None  # marks lived only in the dropped table
    finally:
        store.close()


def test_migrating_by_url_uses_and_releases_its_own_engine(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/by-url.db"
    migrate.upgrade(url)
    assert migrate.current_revision(url) == migrate.head_revision()
    migrate.downgrade(url, "base")
    assert migrate.current_revision(url) is None


def _identity_index_conditions(store: SqlStore) -> dict[str, str | None]:
    conditions = {}
    for index in inspect(store.engine).get_indexes("wk_spans"):
        options = index.get("dialect_options", {})
        where = options.get("sqlite_where", options.get("postgresql_where"))
        conditions[str(index["name"])] = None if where is None else str(where)
    return {
        column: conditions[f"ix_wk_spans_{column}_start_time"]
        for column in ("user_id", "org_id", "session_id")
    }


def test_identity_indexes_hold_only_spans_that_have_one(target: StoreTarget) -> None:
    store = SqlStore(target.engine())
    try:
        migrate.upgrade(store.engine)
        partial = _identity_index_conditions(store)
        assert all(
            condition is not None and f"{column} IS NOT NULL" in condition.replace('"', "")
            for column, condition in partial.items()
        ), partial

        migrate.downgrade(store.engine, "0002")
        assert set(_identity_index_conditions(store).values()) == {None}
    finally:
        store.close()


def _session_keys(store: SqlStore) -> tuple[list[str], set[str]]:
    inspector = inspect(store.engine)
    indexes = {str(index["name"]) for index in inspector.get_indexes("wk_sessions")}
    return inspector.get_pk_constraint("wk_sessions")["constrained_columns"], indexes


def test_sessions_are_keyed_by_organisation_and_walking_down_merges_them(
    target: StoreTarget,
) -> None:
    store = SqlStore(target.engine())
    day = TimeRange(datetime.fromtimestamp(T0, UTC), datetime.fromtimestamp(T0 + 86_400, UTC))

    def stored() -> list[tuple[str, str | None, int, int]]:
        items = store.sessions(day, Scope.everything()).items
        return sorted((s.session_id, s.org_id, s.spans, s.input_tokens) for s in items)

    try:
        migrate.upgrade(store.engine)
        key, indexes = _session_keys(store)
        assert key == ["session_id", "org_id"]
        store.write(
            batch_of(
                [
                    span(T0, 1.0, session_id="s1", org_id="A", input_tokens=1),
                    span(T0 + 1, 1.0, session_id="s1", org_id="B", input_tokens=10),
                    span(T0 + 2, 1.0, session_id="s2", input_tokens=100),
                ]
            )
        )
        assert stored() == [("s1", "A", 1, 1), ("s1", "B", 1, 10), ("s2", None, 1, 100)]

        migrate.downgrade(store.engine, "0007")
        assert _session_keys(store) == (["session_id"], indexes)
        assert stored() == [("s1", "A", 2, 11), ("s2", None, 1, 100)]

        migrate.upgrade(store.engine)
        assert _session_keys(store) == (key, indexes)
        assert stored() == [("s1", "A", 2, 11), ("s2", None, 1, 100)]
        store.write(batch_of([span(T0 + 3, 1.0, session_id="s1", org_id="B")]))
        assert stored() == [("s1", "A", 2, 11), ("s1", "B", 1, 0), ("s2", None, 1, 100)]
    finally:
        store.close()


def test_postgresql_keeps_finer_statistics_on_the_log_search_column(target: StoreTarget) -> None:
    if not target.url.startswith("postgresql"):
        pytest.skip("SQLite's FTS5 table has no planner statistics")
    store = SqlStore(target.engine())

    def statistics_target() -> object:
        with store.engine.connect() as connection:
            return connection.exec_driver_sql(
                "SELECT attstattarget FROM pg_attribute "
                "WHERE attrelid = 'wk_logs'::regclass AND attname = 'search'"
            ).scalar_one()

    try:
        migrate.upgrade(store.engine)
        assert statistics_target() == 1_000
        migrate.downgrade(store.engine, "0008")
        assert statistics_target() in (None, -1)  # the default; PostgreSQL 17 shows NULL
    finally:
        store.close()
