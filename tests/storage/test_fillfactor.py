"""Rows every batch updates get free room on their PostgreSQL pages (migration 0004)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.support.stores import StoreTarget
from watchkeeper.storage import migrate
from watchkeeper.storage.dialect import Dialect
from watchkeeper.storage.sql_store import SqlStore

UPDATED_TABLES = ("wk_rollups", "wk_sessions")


def _fillfactors(store: SqlStore) -> dict[str, str | None]:
    query = text(
        "SELECT relname, reloptions FROM pg_class "
        "WHERE relname = ANY(:names) AND relnamespace = to_regnamespace(current_schema())::oid"
    )
    with store.engine.connect() as connection:
        found = connection.execute(query, {"names": list(UPDATED_TABLES)}).all()
    options = {name: dict(o.split("=", 1) for o in reloptions or []) for name, reloptions in found}
    return {table: options[table].get("fillfactor") for table in UPDATED_TABLES}


@pytest.fixture
def postgresql_store(target: StoreTarget) -> SqlStore:
    store = SqlStore(target.engine())
    if store.dialect is not Dialect.POSTGRESQL:
        store.close()
        pytest.skip("SQLite has no fill factor")
    return store


def test_the_migration_leaves_room_and_walking_down_takes_it_back(
    postgresql_store: SqlStore,
) -> None:
    store = postgresql_store
    try:
        migrate.upgrade(store.engine)
        assert _fillfactors(store) == dict.fromkeys(UPDATED_TABLES, "70")

        migrate.downgrade(store.engine, "0003")
        assert _fillfactors(store) == dict.fromkeys(UPDATED_TABLES, None)
    finally:
        store.close()


def test_tables_recreated_at_head_leave_room_too(postgresql_store: SqlStore) -> None:
    store = postgresql_store
    try:
        migrate.upgrade(store.engine)
        with store.engine.begin() as connection:
            for table in UPDATED_TABLES:
                connection.execute(text(f"DROP TABLE {table}"))
        assert set(migrate.repair(store.engine)) >= set(UPDATED_TABLES)
        assert _fillfactors(store) == dict.fromkeys(UPDATED_TABLES, "70")
    finally:
        store.close()
