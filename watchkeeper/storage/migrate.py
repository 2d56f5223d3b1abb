"""Bring a store's schema up (or down) to a revision by running Alembic from code.

The migration scripts ship inside the package, so an installed Watchkeeper can migrate a
user's database without an ``alembic.ini``. Each command runs in one write transaction; on
PostgreSQL it also holds an advisory lock, so app replicas starting together migrate one at a time,
and first creates the store's schema if it is missing. The schema is the connections' search path,
so Alembic's version table lands there too, out of sight of the app's own Alembic.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import assert_never

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import URL, Connection, Engine

from watchkeeper.storage.dialect import Dialect
from watchkeeper.storage.engine import create_store_engine, store_schema, write_transaction
from watchkeeper.storage.schema import VERSION_TABLE, metadata

MIGRATIONS = Path(__file__).with_name("migrations")
_ADVISORY_LOCK = 0x5741_7443_4B50  # any constant shared by every Watchkeeper process

EngineOrUrl = Engine | str | URL


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@contextmanager
def _engine(target: EngineOrUrl) -> Iterator[Engine]:
    if isinstance(target, Engine):
        yield target
        return
    engine = create_store_engine(target)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def _migration_connection(target: EngineOrUrl) -> Iterator[Connection]:
    with _engine(target) as engine, write_transaction(engine) as connection:
        dialect = Dialect.of(engine.url)
        match dialect:
            case Dialect.POSTGRESQL:
                # A migration may wait for another process's and build indexes on big tables:
                # the store's statement timeout is for writes and reads, not for this.
                connection.execute(text("SET LOCAL statement_timeout = 0"))
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK}
                )
                _create_schema(connection)
            case Dialect.SQLITE:
                pass  # BEGIN IMMEDIATE already excludes every other writer
            case _:
                assert_never(dialect)
        yield connection


def _create_schema(connection: Connection) -> None:
    schema = store_schema(connection)
    if schema is None:
        return
    # Looked up first rather than CREATE SCHEMA IF NOT EXISTS, which needs the right to create
    # schemas even when the schema is there: an operator may have made it for a narrower user.
    exists = connection.execute(
        text("SELECT 1 FROM pg_namespace WHERE nspname = :schema"), {"schema": schema}
    ).first()
    if exists is None:
        # The name is a checked lower-case identifier (Settings.database_schema); quoted anyway.
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')


def upgrade(target: EngineOrUrl, revision: str = "head") -> list[str]:
    """Migrate to ``revision``; at head, also recreate what is missing (see :func:`repair`).

    Returns the names of the tables and indexes recreated.
    """
    with _migration_connection(target) as connection:
        command.upgrade(_config(connection), revision)
        at_head = (
            MigrationContext.configure(
                connection, opts={"version_table": VERSION_TABLE}
            ).get_current_revision()
            == head_revision()
        )
        return _repair(connection) if at_head else []


def repair(target: EngineOrUrl) -> list[str]:
    """Recreate the tables and indexes of the head schema that are missing from a store at head.

    The version table only says which migrations ran: a table dropped by hand (or by a restore
    that skipped it) stays missing, and every write fails on it. What is missing is made from
    :data:`~watchkeeper.storage.schema.metadata`, which is the head schema (a test checks they
    agree). Returns the names recreated; nothing for a store below head, whose schema is not
    the metadata's.
    """
    with _migration_connection(target) as connection:
        current = MigrationContext.configure(
            connection, opts={"version_table": VERSION_TABLE}
        ).get_current_revision()
        return _repair(connection) if current == head_revision() else []


def _repair(connection: Connection) -> list[str]:
    inspector = inspect(connection)
    existing = set(inspector.get_table_names())
    missing_tables = [table for table in metadata.sorted_tables if table.name not in existing]
    recreated = [table.name for table in missing_tables]
    for table in missing_tables:  # with their indexes and keys
        table.create(connection)
    for table in metadata.sorted_tables:
        if table.name not in existing:
            continue
        indexes = {index["name"] for index in inspector.get_indexes(table.name)}
        for index in sorted(table.indexes, key=lambda index: str(index.name)):
            if index.name not in indexes:
                index.create(connection)
                recreated.append(str(index.name))
    return recreated


def downgrade(target: EngineOrUrl, revision: str) -> None:
    with _migration_connection(target) as connection:
        command.downgrade(_config(connection), revision)


def current_revision(target: EngineOrUrl) -> str | None:
    """The revision the store is at, or ``None`` for a database Watchkeeper never migrated."""
    with _engine(target) as engine, engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def head_revision() -> str:
    head = _scripts().get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS}")
    return head


def revisions() -> list[str]:
    """Every revision, oldest first."""
    return [script.revision for script in reversed(list(_scripts().walk_revisions()))]
