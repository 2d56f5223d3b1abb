"""Opening the store that :class:`~watchkeeper.config.Settings` describe."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from watchkeeper.config import Settings
from watchkeeper.model.errors import StoreUnavailable
from watchkeeper.storage import migrate
from watchkeeper.storage.engine import create_store_engine
from watchkeeper.storage.errors import describe_error
from watchkeeper.storage.sql_store import SqlStore

DATABASE_URL = "WATCHKEEPER_DATABASE_URL"


def postgres_url(url: str) -> URL:
    """``url`` with the psycopg 3 driver, whichever PostgreSQL scheme it was written with."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    return parsed.set(drivername="postgresql+psycopg")


@dataclass(frozen=True)
class StoreLocation:
    """Where the settings put the store, described without its password."""

    url: URL
    description: str
    setting: str
    schema: str | None = None
    """The PostgreSQL schema holding the tables; ``None`` for SQLite."""


def store_location(settings: Settings) -> StoreLocation:
    sqlite_file = settings.sqlite_file
    if sqlite_file is not None:
        setting = "WATCHKEEPER_SQLITE_PATH" if settings.database_url is None else DATABASE_URL
        url = URL.create("sqlite", database=str(sqlite_file))
        return StoreLocation(url, f"SQLite file {sqlite_file}", setting)
    assert settings.database_url is not None  # no SQLite file means a PostgreSQL URL
    url = postgres_url(settings.database_url.get_secret_value())
    schema = settings.database_schema
    where = f"PostgreSQL at {url.render_as_string(hide_password=True)}, schema {schema}"
    return StoreLocation(url, where, DATABASE_URL, schema)


def open_store(settings: Settings) -> SqlStore:
    """The SQLite file or the PostgreSQL schema the settings name; migrated if configured.

    Raises :class:`StoreUnavailable` naming the setting to check when the store cannot be reached.
    """
    location = store_location(settings)
    url, where, setting = location.url, location.description, location.setting
    if location.schema is not None:
        setting = f"{setting} and WATCHKEEPER_DATABASE_SCHEMA"
    if url.get_backend_name() == "sqlite" and url.database:
        try:
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot create the directory for the {where} ({exc.strerror}); check {setting}"
            ) from None
    store = SqlStore(
        create_store_engine(url, schema=location.schema, timeout=settings.store_timeout)
    )
    try:
        store.ping()
        if settings.migrate_on_start:
            migrate.upgrade(store.engine)
    except StoreUnavailable as exc:
        store.close()
        raise StoreUnavailable(f"cannot open the {where}: {exc}; check {setting}") from None
    except Exception as exc:
        store.close()
        raise StoreUnavailable(
            f"cannot migrate the {where}: {describe_error(exc)}; check {setting}"
        ) from None
    return store
