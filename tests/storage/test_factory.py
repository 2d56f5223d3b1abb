"""Opening the configured store: which database, migrations, and errors an operator can act on."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchkeeper.config import Settings
from watchkeeper.storage import migrate
from watchkeeper.storage.base import StoreUnavailable
from watchkeeper.storage.dialect import Dialect
from watchkeeper.storage.factory import open_store, postgres_url


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
    with pytest.raises(StoreUnavailable, match="DATABASE_URL") as raised:
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
    url = f"{postgres_url}?options=-csearch_path%3D{postgres_schema}"
    store = open_store(Settings(database_url=url))
    try:
        assert store.dialect is Dialect.POSTGRESQL
        assert migrate.current_revision(store.engine) == migrate.head_revision()
    finally:
        store.close()


def test_dialect_of_a_url() -> None:
    assert Dialect.of("sqlite:///x.db") is Dialect.SQLITE
    assert Dialect.of("postgresql+psycopg://u@h/db") is Dialect.POSTGRESQL
    with pytest.raises(ValueError, match="not 'mysql'"):
        Dialect.of("mysql://u@h/db")
