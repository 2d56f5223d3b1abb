"""The databases Watchkeeper can store into, told apart by URL."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy.engine import URL, make_url


class Dialect(StrEnum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"

    @classmethod
    def of(cls, url: str | URL) -> Dialect:
        """The dialect of a SQLAlchemy URL (any driver suffix such as ``+psycopg`` is ignored)."""
        backend = make_url(url).get_backend_name()
        try:
            return cls(backend)
        except ValueError:
            raise ValueError(
                f"Watchkeeper stores into SQLite or PostgreSQL, not {backend!r}"
            ) from None
