"""Telling a store that cannot take a batch now from a batch the store will never take.

The flush worker retries :class:`StoreUnavailable` and drops :class:`BatchRejected`, so the
split decides between "keep trying" and "lose this batch". When unsure it says unavailable:
retrying a bad batch costs a full buffer, dropping a good one loses data. Only errors that the
values themselves cause are rejections:

* PostgreSQL, by SQLSTATE class: 22 (data exception: out of range, too long, bad encoding),
  23 (integrity constraint) and 54 (program limit exceeded, such as an index row too large;
  psycopg files that one under OperationalError, which is why classes are read, not types).
  Connection failures (08), serialisation failures and deadlocks (40), resources (53), operator
  intervention and timeouts (57), system errors (58) and schema problems (42: not migrated, no
  privilege; fixing them makes the same batch succeed) are unavailable.
* SQLite, by type: IntegrityError, DataError (too big), ProgrammingError and InterfaceError
  (both mean a value could not be bound) are rejections; OperationalError (locked, busy, disk
  I/O, no such table) and the rest are unavailable.
* Anywhere: SQLAlchemy failing to process a parameter value, Python's OverflowError (an
  integer too large for a 64-bit column), and the ValueError or TypeError a driver raises for a
  value it cannot send (``UnicodeEncodeError`` for a lone surrogate, which UTF-8 cannot encode:
  sqlite3 and psycopg raise it raw, over COPY and executemany alike) are rejections; pool
  timeouts and OSError are unavailable.

A rejection's message names the error's class (and SQLSTATE), never the driver's text: that
text quotes the values written (``value "18446744073709551616" is out of range``), and the
message is logged and shown in health.
"""

from __future__ import annotations

import sqlite3

import psycopg
from sqlalchemy.exc import DBAPIError, SQLAlchemyError, StatementError

from watchkeeper.model.errors import BatchRejected, StoreUnavailable
from watchkeeper.redaction import scrub_urls

DATABASE_ERRORS = (SQLAlchemyError, sqlite3.Error, psycopg.Error, OverflowError, OSError)
"""What a store call may raise that should reach the caller as one of the two exceptions."""

WRITE_ERRORS = (*DATABASE_ERRORS, ValueError, TypeError)
"""What writing may raise: a database's errors, and a driver's refusal to send a value.

Never left to escape a write: the worker takes whatever is neither a rejection nor an outage
for an outage, and would retry a batch holding an unsendable value forever.
"""

_REJECTED_SQLSTATE_CLASSES = frozenset({"22", "23", "54"})
_REJECTED_SQLITE = (
    sqlite3.IntegrityError,
    sqlite3.DataError,
    sqlite3.ProgrammingError,
    sqlite3.InterfaceError,
)


def describe_error(error: BaseException) -> str:
    """One line naming the driver's error, without SQLAlchemy's statement and parameter dump."""
    cause = driver_error(error)
    first_line = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    # Connection errors may quote a URL with its password: never let one into a message.
    first_line = scrub_urls(first_line)
    return f"{type(cause).__name__}: {first_line}" if first_line else type(cause).__name__


def driver_error(error: BaseException) -> BaseException:
    """The driver's (or Python's) exception under SQLAlchemy's wrapper, if there is one."""
    if isinstance(error, StatementError) and isinstance(error.orig, BaseException):
        return error.orig
    return error


def is_rejection(error: BaseException) -> bool:
    """Whether ``error`` was caused by the values written rather than by the store's state."""
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return False
    elif isinstance(error, StatementError):
        return True  # SQLAlchemy could not turn a parameter value into what the column takes
    cause = driver_error(error)
    if isinstance(cause, psycopg.Error):
        sqlstate = cause.sqlstate
        if sqlstate is None:
            # Raised by psycopg itself: a value it cannot send, or a connection that is gone.
            return isinstance(cause, psycopg.DataError | psycopg.ProgrammingError)
        return sqlstate[:2] in _REJECTED_SQLSTATE_CLASSES
    if isinstance(cause, sqlite3.Error):
        return isinstance(cause, _REJECTED_SQLITE)
    # A value the driver could not send: OverflowError, UnicodeEncodeError and other ValueErrors
    # and TypeErrors. (Connection failures are OSError, never a ValueError.)
    return isinstance(cause, ValueError | TypeError | OverflowError)


def describe_rejection(error: BaseException) -> str:
    """The driver's error class and SQLSTATE, without its message, which may quote values."""
    cause = driver_error(error)
    sqlstate = getattr(cause, "sqlstate", None)
    return f"{type(cause).__name__} (SQLSTATE {sqlstate})" if sqlstate else type(cause).__name__


def classify_write_error(error: BaseException, action: str) -> StoreUnavailable | BatchRejected:
    """The exception to raise instead of ``error``, its message naming ``action`` and the cause.

    Raise a rejection ``from None``: the error it replaces (SQLAlchemy's) carries the statement
    and its parameters, and a traceback logged with the chain would print the values after all.
    """
    if is_rejection(error):
        return BatchRejected(f"could not {action}: {describe_rejection(error)}")
    return StoreUnavailable(f"could not {action}: {describe_error(error)}")
