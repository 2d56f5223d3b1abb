"""Alembic environment for Watchkeeper's store; run only through :mod:`watchkeeper.storage.migrate`.

The caller passes an open connection (``config.attributes["connection"]``) already inside the
transaction the migration should run in, so this file never builds engines or reads ini files.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from watchkeeper.storage.dialect import Dialect
from watchkeeper.storage.schema import VERSION_TABLE, metadata


def run() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError(
            "Watchkeeper's migrations run through watchkeeper.storage.migrate, "
            "not the alembic command line"
        )
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
        render_as_batch=Dialect.of(connection.engine.url) is Dialect.SQLITE,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
