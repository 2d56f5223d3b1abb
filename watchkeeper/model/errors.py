"""What a store raises: unreachable, a batch it rejects, a query it cannot answer."""

from __future__ import annotations


class StoreUnavailable(RuntimeError):
    """The store cannot be reached or refused the write; the worker keeps the batch and retries."""


class StoreStuck(StoreUnavailable):
    """A store call did not return in time; its connections were abandoned, a new one is made."""


class BatchRejected(RuntimeError):
    """The store refused the batch because of what is in it; writing it again would fail again.

    Deliberately not a :class:`StoreUnavailable`: a worker that retries every unavailable store
    must drop (and count) a rejected batch, or one bad value would block every later flush.
    The message names the database's complaint (for example a value out of range).
    """


class QueryError(ValueError):
    """A query's arguments are invalid (bad cursor, reversed range); the message says which."""
