"""Property-based, with every check schemathesis has: each documented operation, fed generated
input, never answers 5xx, answers what its OpenAPI document says (statuses, shapes, the bounds
and patterns of its parameters), and accepts what the document says is valid; on SQLite and on
PostgreSQL.

The schemas are loaded when the module is: schemathesis' lazy ``from_fixture`` does not run on
this pytest, so the PostgreSQL store gets a schema of its own here, dropped at exit, as the
``postgres_schema`` fixture does.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import PositiveDataAcceptanceConfig
from schemathesis.config._checks import POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES
from schemathesis.specs.openapi.schemas import OpenApiSchema

from tests.api.conftest import API_KEY
from tests.conftest import POSTGRES_URL_VARIABLE
from tests.support.stores import StoreTarget
from watchkeeper.config import Settings, load_settings
from watchkeeper.runtime.runtime import Runtime
from watchkeeper.storage import migrate
from watchkeeper.storage.factory import postgres_url as psycopg_url
from watchkeeper.storage.sql_store import SqlStore

# A 400 is the documented answer to parameters that are each valid but make no sense together
# ('range' and 'from' both, 'from' after 'to', more than 400 days, a cursor no page gave):
# OpenAPI cannot state rules across parameters. Any other refusal of schema-valid input (a 422)
# still fails: the document and the validation must agree.
ACCEPTED = [*POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES, "400"]
HEADERS = {"Authorization": f"Bearer {API_KEY}"}

_directory = Path(tempfile.mkdtemp(prefix="watchkeeper-schema-"))
atexit.register(shutil.rmtree, _directory, True)


def _schema_over(target: StoreTarget, app_settings: Settings) -> OpenApiSchema:
    store = SqlStore(target.engine())
    migrate.upgrade(store.engine)
    atexit.register(store.close)
    # The settings name the same store: schemathesis runs the app's lifespan around each
    # operation's test, and the runtime closes its store when stopped and opens it again from
    # them when started. Each test waits for it to be open, not for the first second only.
    runtime = Runtime(app_settings, store=store, standalone=True)
    app = runtime.app
    started = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        async with started(application) as state:
            await asyncio.to_thread(runtime.stores.wait_open, 60)
            yield state

    app.router.lifespan_context = lifespan
    loaded = schemathesis.openapi.from_asgi("/openapi.json", app)
    loaded.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
        expected_statuses=ACCEPTED
    )
    return loaded


def _postgres_target() -> tuple[StoreTarget, Settings] | None:
    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not url:
        return None
    name = f"wk_test_{secrets.token_hex(6)}"
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{name}"')

    def drop() -> None:
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{name}" CASCADE')

    atexit.register(drop)
    target = StoreTarget(psycopg_url(url).render_as_string(hide_password=False), name)
    return target, load_settings(database_url=url, database_schema=name, api_keys=[API_KEY])


sqlite_schema = _schema_over(
    StoreTarget(f"sqlite:///{_directory / 'schema.db'}"),
    load_settings(sqlite_path=_directory / "schema.db", api_keys=[API_KEY]),
)
_postgres = _postgres_target()
postgres_schema = _schema_over(*_postgres) if _postgres is not None else sqlite_schema


@sqlite_schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_on_sqlite(case: schemathesis.Case) -> None:
    case.call_and_validate(headers=HEADERS)


@pytest.mark.postgres
@postgres_schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_on_postgresql(case: schemathesis.Case) -> None:
    if _postgres is None:
        pytest.skip(f"set {POSTGRES_URL_VARIABLE} to run the PostgreSQL tests")
    case.call_and_validate(headers=HEADERS)
