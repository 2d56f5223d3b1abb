"""The store the log tests write into: SQLite, and PostgreSQL when one is named."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_options(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, object]:
    """Settings naming a fresh store: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        return {"database_url": f"sqlite:///{tmp_path / 'watchkeeper.db'}"}
    return {
        "database_url": request.getfixturevalue("postgres_url"),
        "database_schema": request.getfixturevalue("postgres_schema"),
    }
