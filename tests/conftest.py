"""Fixtures shared by Watchkeeper's test suites."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import psycopg
import pytest

from watchkeeper.instrumentation.httpx import uninstrument_httpx
from watchkeeper.resilience import registry

POSTGRES_URL_VARIABLE = "WATCHKEEPER_TEST_POSTGRES_URL"


def pytest_configure(config: pytest.Config) -> None:
    """Apps under test aggregate in their own process unless a test says otherwise: each test
    owns its store, and a collector per test would outlive it. tests/collector tests the
    default, a local collector process per app."""
    os.environ.setdefault("WATCHKEEPER_COLLECTOR", "off")


@pytest.fixture(autouse=True)
def _fresh_resilience() -> Iterator[None]:
    """Each test starts with the process's resilience (breakers, policies) unmade: an app a
    test instrumented must not leave its integrations in the next test's health."""
    yield
    registry._default = None


@pytest.fixture(autouse=True)
def _httpx_uninstrumented() -> Iterator[None]:
    """Each test leaves httpx as it found it: a test that instrumented an app with outbound
    recording would otherwise record the next tests' own client calls, and give them a
    traceparent their server then takes as a parent."""
    yield
    uninstrument_httpx()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL server to test against; tests needing it skip when none is named.

    When one is named but cannot be reached the tests fail: a CI job that set the variable
    meant to test PostgreSQL.
    """
    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not url:
        pytest.skip(f"set {POSTGRES_URL_VARIABLE} to run the PostgreSQL tests")
    return url


@pytest.fixture
def postgres_schema(postgres_url: str) -> Iterator[str]:
    """A fresh, empty schema for one test, dropped with everything in it afterwards."""
    schema = f"wk_test_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(autouse=True)
def spool_of_its_own(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each test's recorders spool (when their store is down) into a directory of the test's own.

    The default spool lives beside the SQLite file or in the user's cache directory, where one
    test's leftovers would be replayed into the next test's store.
    """
    monkeypatch.setenv("WATCHKEEPER_SPOOL_DIR", str(tmp_path_factory.mktemp("spool")))
