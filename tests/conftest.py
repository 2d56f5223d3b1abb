"""Fixtures shared by Watchkeeper's test suites."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import psycopg
import pytest

POSTGRES_URL_VARIABLE = "WATCHKEEPER_TEST_POSTGRES_URL"


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
