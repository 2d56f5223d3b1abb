"""A store per test, on a SQLite file and (when configured) in a PostgreSQL schema of its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.stores import StoreTarget
from watchkeeper.storage import migrate
from watchkeeper.storage.factory import postgres_url as psycopg_url
from watchkeeper.storage.sql_store import SqlStore


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> StoreTarget:
    """Where a test's store lives, without creating any tables."""
    if request.param == "sqlite":
        return StoreTarget(f"sqlite:///{tmp_path / 'watchkeeper.db'}")
    base_url: str = request.getfixturevalue("postgres_url")
    schema: str = request.getfixturevalue("postgres_schema")
    url = psycopg_url(base_url).render_as_string(hide_password=False)
    return StoreTarget(url, schema)


@pytest.fixture
def store(target: StoreTarget) -> Iterator[SqlStore]:
    """A migrated, empty store."""
    store = SqlStore(target.engine())
    migrate.upgrade(store.engine)
    try:
        yield store
    finally:
        store.close()
