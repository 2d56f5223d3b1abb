"""Log search: full-text with each database's own engine, filters, newest first by cursor.

A full-text query is split into words (runs of letters and digits) here, for both databases
alike, and every word must begin a word of the record's message, attributes or exception: SQLite
asks its FTS5 table (``"word"*`` terms), PostgreSQL its generated ``tsvector`` column through the
GIN index (``word:*`` terms joined by ``&``). Both index the same words (see migration 0005), so
a query finds the same records in both.

SQLite has no statistics on FTS5 matches, so the plan is chosen here: a search whose words match
few records in the whole store reads those and sorts them; one that matches many reads the
range's records newest first, keeping the matching ones, and stops at a full page (at ten million
records, "chart", in one record of 30, took 742 ms the first way). PostgreSQL's planner chooses
itself, from the search column's statistics (migration 0009), and a search gets the memory its
matches' bitmap needs.

A substring (``text``) is matched in the message with ``LIKE`` (PostgreSQL: ``ILIKE``, served by
the trigram index when ``pg_trgm`` is installed).
"""

from __future__ import annotations

import re
from typing import Any, assert_never

from sqlalchemy import ColumnElement, Row, Select, column, func, literal_column, select, table
from sqlalchemy.engine import Connection

from watchkeeper.model.errors import QueryError
from watchkeeper.model.query import LogFilter, Page, Scope, TimeRange
from watchkeeper.model.stored import StoredLog
from watchkeeper.storage.dialect import Dialect
from watchkeeper.storage.schema import LOG_SEARCH_COLUMN, LOG_SEARCH_TABLE, logs
from watchkeeper.storage.sql_queries import as_time, fetch_page, in_range, parse_json, scoped

MAX_WORDS = 16
SEARCH_WORK_MEM = "64MB"
"""PostgreSQL's memory for one search's bitmap, for as long as its transaction lasts."""
COMMON_MATCHES = 5_000
"""Matches in the whole store from which a SQLite search reads the range instead of the matches:
reading up to this many matches and sorting them costs about as much as scanning the newest
records of a day's range at the rate a word of one record in 30 fills a page."""
_WORD = re.compile(r"[^\W_]+")
_search = table(LOG_SEARCH_TABLE, column("rowid"))


def search_words(query: str) -> list[str]:
    """The words of a full-text query, lowercased; a query without any is a :class:`QueryError`."""
    words = list(dict.fromkeys(_WORD.findall(query.lower())))
    if not words:
        raise QueryError("a search needs at least one word of letters or digits")
    if len(words) > MAX_WORDS:
        raise QueryError(f"a search may have at most {MAX_WORDS} words, got {len(words)}")
    return words


def _matches(connection: Connection, dialect: Dialect, words: list[str]) -> ColumnElement[bool]:
    match dialect:
        case Dialect.SQLITE:
            terms = " ".join(f'"{word}"*' for word in words)
            matching = select(_search.c.rowid).where(
                literal_column(LOG_SEARCH_TABLE).op("MATCH")(terms)
            )
            if _is_common(connection, matching):
                # ``id + 0`` is no column SQLite can look rows up by: it walks the time index
                # and tests each record against the matches instead.
                return (logs.c.id + 0).in_(matching)
            return logs.c.id.in_(matching)
        case Dialect.POSTGRESQL:
            # The GIN index gathers a prefix's matches in a bitmap, which at the default 4 MB
            # turns lossy past some 100,000 matches (a common word's, at ten million records):
            # then every record of those pages is tested again (two words: 726 ms, here 178 ms).
            connection.exec_driver_sql(f"SET LOCAL work_mem = '{SEARCH_WORK_MEM}'")
            terms = " & ".join(f"{word}:*" for word in words)
            return literal_column(LOG_SEARCH_COLUMN).op("@@")(
                func.to_tsquery(literal_column("'simple'::regconfig"), terms)
            )
        case _:
            assert_never(dialect)


def _is_common(connection: Connection, matching: Select[tuple[int]]) -> bool:
    counted = select(func.count()).select_from(matching.limit(COMMON_MATCHES).subquery())
    return connection.execute(counted).scalar_one() >= COMMON_MATCHES


def _substring(dialect: Dialect, text: str) -> ColumnElement[bool]:
    match dialect:
        case Dialect.SQLITE:  # SQLite's LIKE ignores the case of ASCII letters
            return logs.c.message.contains(text, autoescape=True)
        case Dialect.POSTGRESQL:
            return logs.c.message.icontains(text, autoescape=True)
        case _:
            assert_never(dialect)


def stored_log(row: Row[Any]) -> StoredLog:
    return StoredLog(
        as_time(row.time),
        row.level,
        row.logger,
        row.message,
        row.trace_id,
        row.span_id,
        row.service,
        row.instance,
        row.user_id,
        row.org_id,
        parse_json(row.attributes),
        row.session_id,
        row.exception_type,
        row.exception,
        row.error_group,
        row.source,
    )


def log_page(
    connection: Connection,
    time_range: TimeRange,
    scope: Scope,
    min_level: int,
    text: str | None,
    trace_id: str | None,
    where: LogFilter,
    limit: int,
    cursor: str | None,
) -> Page[StoredLog]:
    dialect = Dialect(connection.dialect.name)
    query = select(logs).where(
        in_range(logs.c.time, time_range.start_ts, time_range.end_ts), *scoped(logs, scope)
    )
    if min_level > 0:
        query = query.where(logs.c.level >= min_level)
    if text:
        query = query.where(_substring(dialect, text))
    if where.query is not None:
        query = query.where(_matches(connection, dialect, search_words(where.query)))
    wanted: tuple[tuple[Any, str | None], ...] = (
        (logs.c.trace_id, trace_id and trace_id.lower()),
        (logs.c.logger, where.logger),
        (logs.c.service, where.service),
        (logs.c.user_id, where.user_id),
        (logs.c.session_id, where.session_id),
        (logs.c.error_group, where.error_group),
        (logs.c.source, where.source),
    )
    query = query.where(*(column == value for column, value in wanted if value is not None))
    rows, next_cursor = fetch_page(connection, query, (logs.c.time, logs.c.id), limit, cursor)
    return Page([stored_log(row) for row in rows], next_cursor)
