"""Opening the configured store: which database, migrations, and errors an operator can act on."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, create_engine

from tests.support.stores import T0, batch_of, span
from watchkeeper.config import Settings, load_settings
from watchkeeper.model.errors import StoreUnavailable
from watchkeeper.model.query import RetainedTable
from watchkeeper.storage import migrate
from watchkeeper.storage.dialect import Dialect
from watchkeeper.storage.factory import open_store, postgres_url
from watchkeeper.storage.schema import VERSION_TABLE, metadata


def test_without_a_database_url_the_sqlite_file_is_created_and_migrated(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "wk.db"
    store = open_store(Settings(sqlite_path=path))
    try:
        assert store.dialect is Dialect.SQLITE
        assert path.exists()
        assert migrate.current_revision(store.engine) == migrate.head_revision()
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        store.close()


def test_migrations_can_be_left_to_the_operator(tmp_path: Path) -> None:
    store = open_store(Settings(sqlite_path=tmp_path / "wk.db", migrate_on_start=False))
    try:
        assert migrate.current_revision(store.engine) is None
    finally:
        store.close()


def test_an_unusable_sqlite_path_names_the_setting(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreUnavailable, match="WATCHKEEPER_SQLITE_PATH"):
        open_store(Settings(sqlite_path=blocker / "wk.db"))


def test_an_unreachable_postgres_names_the_setting_and_hides_the_password() -> None:
    settings = Settings(database_url="postgres://wk:s3cret-pw@127.0.0.1:1/db")
    with pytest.raises(StoreUnavailable, match="check WATCHKEEPER_DATABASE_URL") as raised:
        open_store(settings)
    assert "s3cret-pw" not in str(raised.value)
    assert "127.0.0.1" in str(raised.value)


@pytest.mark.parametrize(
    "url", ["postgres://u@h/db", "postgresql://u@h/db", "postgresql+psycopg://u@h/db"]
)
def test_postgres_urls_use_psycopg_3(url: str) -> None:
    normalised = postgres_url(url)
    assert normalised.drivername == "postgresql+psycopg"
    assert (normalised.host, normalised.database) == ("h", "db")


@pytest.mark.postgres
def test_open_store_migrates_postgres(postgres_url: str, postgres_schema: str) -> None:
    store = open_store(Settings(database_url=postgres_url, database_schema=postgres_schema))
    try:
        assert store.dialect is Dialect.POSTGRESQL
        assert migrate.current_revision(store.engine) == migrate.head_revision()
    finally:
        store.close()


@pytest.mark.parametrize("where", ["relative", "absolute"])
def test_a_sqlite_url_opens_that_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "data" / "wk.db"
    url = "sqlite:///data/wk.db" if where == "relative" else f"sqlite:///{path}"
    assert url.startswith("sqlite:////") is (where == "absolute")
    store = open_store(Settings(database_url=url))
    try:
        assert store.dialect is Dialect.SQLITE
        assert migrate.current_revision(store.engine) == migrate.head_revision()
        assert path.exists()
    finally:
        store.close()


def test_an_unusable_sqlite_url_names_the_setting(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreUnavailable, match="check WATCHKEEPER_DATABASE_URL"):
        open_store(Settings(database_url=f"sqlite:///{blocker}/wk.db"))


def test_the_host_apps_database_url_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing listens on port 1: were it read, opening the store would fail.
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:pw@127.0.0.1:1/app")
    monkeypatch.delenv("WATCHKEEPER_DATABASE_URL", raising=False)
    monkeypatch.delenv("WATCHKEEPER_SQLITE_PATH", raising=False)
    monkeypatch.chdir(tmp_path)
    store = open_store(load_settings())
    try:
        assert store.dialect is Dialect.SQLITE
        assert (tmp_path / "watchkeeper.db").exists()
    finally:
        store.close()


def _tables_by_schema(database_url: str) -> dict[str, set[str]]:
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT schemaname, tablename FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
    tables: dict[str, set[str]] = {}
    for schema, table in rows:
        tables.setdefault(schema, set()).add(table)
    return tables


@pytest.mark.postgres
@pytest.mark.parametrize("schema", [None, "monitoring"])
def test_on_postgresql_the_tables_live_in_their_own_schema(
    postgres_database: str, schema: str | None
) -> None:
    settings = (
        Settings(database_url=postgres_database)
        if schema is None
        else Settings(database_url=postgres_database, database_schema=schema)
    )
    expected = schema or "watchkeeper"
    store = open_store(settings)  # creates the schema: the database has only public
    try:
        store.write(batch_of([span(T0 + i) for i in range(5)]))  # COPY and raw SQL
        assert store.count(RetainedTable.SPANS) == 5
        assert migrate.current_revision(store.engine) == migrate.head_revision()
    finally:
        store.close()

    tables = _tables_by_schema(postgres_database)
    assert set(tables) == {expected}
    assert {table.name for table in metadata.sorted_tables} | {VERSION_TABLE} == tables[expected]
    # The app's own Alembic, comparing its models with public, sees nothing of Watchkeeper's.
    app_engine = create_engine(postgres_url(postgres_database))
    try:
        with app_engine.connect() as app_connection:
            context = MigrationContext.configure(app_connection)
            assert compare_metadata(context, MetaData()) == []
    finally:
        app_engine.dispose()


@pytest.mark.postgres
def test_a_restart_reuses_the_schema_and_its_data(postgres_database: str) -> None:
    settings = Settings(database_url=postgres_database)
    first = open_store(settings)
    try:
        first.write(batch_of([span(T0)]))
    finally:
        first.close()
    again = open_store(settings)
    try:
        assert again.count(RetainedTable.SPANS) == 1
    finally:
        again.close()


@pytest.mark.postgres
def test_the_urls_own_connection_options_are_kept(postgres_database: str) -> None:
    url = f"{postgres_database}?options=-cstatement_timeout%3D12345"
    store = open_store(Settings(database_url=url, database_schema="monitoring"))
    try:
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW statement_timeout").scalar() == "12345ms"
            assert connection.exec_driver_sql("SHOW search_path").scalar() == "monitoring"
    finally:
        store.close()


def test_dialect_of_a_url() -> None:
    assert Dialect.of("sqlite:///x.db") is Dialect.SQLITE
    assert Dialect.of("postgresql+psycopg://u@h/db") is Dialect.POSTGRESQL
    with pytest.raises(ValueError, match="not 'mysql'"):
        Dialect.of("mysql://u@h/db")
