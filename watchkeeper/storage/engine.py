"""SQLAlchemy engines for the store: how each database wants its connections and transactions.

SQLite runs in WAL mode so readers never block the writer. The driver's own transaction
handling is switched off and SQLAlchemy's ``begin`` emits ``BEGIN`` itself, which lets a write
start with ``BEGIN IMMEDIATE``: it takes the file's write lock up front, so writers from several
processes queue on the busy timeout instead of failing half-way through when a read lock cannot
be upgraded.

On PostgreSQL every connection starts with ``search_path`` set to the store's schema alone (a
libpq startup option, so no extra round trip). Unqualified names in the ORM, raw SQL and
``COPY`` alike then reach Watchkeeper's tables, and only those, whichever schema the app uses.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, assert_never

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, make_url

from watchkeeper.storage.dialect import Dialect

SQLITE_BUSY_TIMEOUT_MS = 2_000
"""Short, so a file held locked by someone else surfaces as StoreUnavailable and is retried."""

SQLITE_CACHE_KIB = 8_192
"""Page cache per connection (SQLite's default is 2 MiB). A batch inserts at as many places in
the span indexes as it has users, sessions and names; with 2 MiB the writer evicted those pages
mid-transaction and read them back: nearly five times the file I/O per span of 8 MiB. Larger
caches save little more, and the cache is memory the process keeps once filled."""

SQLITE_CHECKPOINT_PAGES = 10_000
"""WAL pages (about 40 MB) before the writer copies them into the database file (default
1,000): index pages rewritten by batch after batch are copied once, not once per batch."""


SCHEMA_OPTION = "watchkeeper_schema"
"""Execution option naming the PostgreSQL schema an engine's connections work in."""


def create_store_engine(
    url: str | URL,
    connect_args: Mapping[str, Any] | None = None,
    *,
    schema: str | None = None,
    timeout: float | None = None,
) -> Engine:
    """An engine for ``url`` set up for the store; ``connect_args`` go to the driver.

    ``schema`` (PostgreSQL only) is where the store's tables live: the connections' search path,
    and what a migration creates when it is missing (see :func:`store_schema`).

    ``timeout`` (PostgreSQL only) bounds every way a call can hang: connecting, waiting for a
    pooled connection, a statement, and a socket whose peer vanished without resetting it (TCP
    keepalives and ``tcp_user_timeout``). Without it a host that disappears leaves the writer
    waiting in the kernel for as long as TCP retransmits: many minutes.
    """
    dialect = Dialect.of(url)
    args = dict(connect_args or {})
    match dialect:
        case Dialect.SQLITE:
            engine = create_engine(url, connect_args=args)
            event.listen(engine, "connect", _configure_sqlite)
            event.listen(engine, "begin", _begin_sqlite)
        case Dialect.POSTGRESQL:
            options = _options(url, args)
            if schema is not None:
                # Appended to any options the URL carries, and last, so the setting wins.
                options = f"{options} -csearch_path={schema}"
            pool: dict[str, Any] = {}
            if timeout is not None:
                milliseconds = int(timeout * 1000)
                if "statement_timeout" not in options:  # the URL's own choice wins
                    options = f"{options} -cstatement_timeout={milliseconds}"
                args.update(_socket_timeouts(timeout))
                pool["pool_timeout"] = timeout
            if options.strip():
                args["options"] = options.strip()
            engine = create_engine(
                url,
                connect_args=args,
                pool_pre_ping=True,
                execution_options={SCHEMA_OPTION: schema},
                **pool,
            )
        case _:
            assert_never(dialect)
    return engine


def _socket_timeouts(timeout: float) -> dict[str, int]:
    """libpq's settings that turn a dead peer into an error within about ``timeout`` seconds."""
    probe = max(1, int(timeout / 3))
    return {
        "connect_timeout": max(2, int(timeout)),
        "keepalives": 1,
        "keepalives_idle": probe,
        "keepalives_interval": probe,
        "keepalives_count": 3,
        # Unacknowledged data for this long fails the socket, even mid-statement.
        "tcp_user_timeout": int(timeout * 1000),
    }


def _options(url: str | URL, connect_args: Mapping[str, Any]) -> str:
    """The libpq ``options`` already asked for, in ``connect_args`` or else in the URL."""
    if "options" in connect_args:
        return str(connect_args["options"])
    given = make_url(url).query.get("options", "")
    return given if isinstance(given, str) else " ".join(given)


def store_schema(connection: Connection) -> str | None:
    """The PostgreSQL schema ``connection``'s engine was made for, if it was given one."""
    schema = connection.get_execution_options().get(SCHEMA_OPTION)
    return schema if isinstance(schema, str) else None


def _configure_sqlite(dbapi_connection: Any, _record: object) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        cursor.execute(f"PRAGMA wal_autocheckpoint = {SQLITE_CHECKPOINT_PAGES}")
    finally:
        cursor.close()


def driver_connection(connection: Connection) -> Any:
    """The driver's own connection (sqlite3 or psycopg) under a SQLAlchemy connection."""
    driver = connection.connection.driver_connection
    if driver is None:
        raise RuntimeError("the store's connection was closed while in use")
    return driver


def _begin_sqlite(connection: Connection) -> None:
    # A writer has already issued BEGIN IMMEDIATE on the driver connection (see write_transaction).
    if not driver_connection(connection).in_transaction:
        connection.exec_driver_sql("BEGIN")


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection inside a write transaction: committed on success, rolled back on error."""
    with engine.connect() as connection:
        dialect = Dialect.of(engine.url)
        match dialect:
            case Dialect.SQLITE:
                driver_connection(connection).execute("BEGIN IMMEDIATE")
            case Dialect.POSTGRESQL:
                pass
            case _:
                assert_never(dialect)
        with connection.begin():
            yield connection
