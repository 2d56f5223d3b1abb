"""A migrated store per test (SQLite file and PostgreSQL schema), and helpers to feed it."""

from __future__ import annotations

from tests.storage.conftest import store, target

__all__ = ["store", "target"]
