"""A store per test, on a SQLite file and (when configured) in a PostgreSQL schema of its own.

The store works in that schema alone (its search path), as Watchkeeper does in the schema its
settings name, so tests running side by side never see one another's tables.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

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


@pytest.fixture
def postgres_database(postgres_url: str) -> Iterator[str]:
    """The URL of a fresh database of its own, dropped afterwards: a stand-in for an app's
    database, whose ``public`` schema no other test writes into."""
    name = f"wk_test_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
