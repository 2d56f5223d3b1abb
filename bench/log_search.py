"""Log search latency at 1 M and 10 M stored log records, SQLite and PostgreSQL side by side.

``python -m bench.log_search [--rows 1000000 10000000] [--stores sqlite postgresql]``

Each size is loaded into a freshly migrated store (a scratch SQLite file, a scratch PostgreSQL
schema) in bulk, as a restore would: SQLite by ``executemany`` with the FTS5 trigger off, then the
FTS5 table rebuilt in one pass; PostgreSQL by ``COPY`` (it computes the ``tsvector`` column) with
the GIN and trigram indexes dropped, then built afresh. The rate records keep arriving at once the
store is that full is measured after the queries: ``LIVE_ROWS`` more records inserted the same way
with every index and trigger in place. Records span seven days, 30 templates filled with numbers,
ids and one of 5,000 words, so a word is in about 1 in 5,000 records; "chart" is in one template
of 30.

Each query runs through ``SqlStore.logs`` as the API calls it (newest 100 of the last 24 hours)
and is timed ``REPEATS`` times after a warm-up; the median is reported, beside the same query as
a substring (``LIKE``/``ILIKE`` on the message), which is what log search was before.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import assert_never

from bench.common import postgres_available, postgres_settings, sqlite_settings
from watchkeeper.model.query import LogFilter, Scope, TimeRange
from watchkeeper.storage.dialect import Dialect
from watchkeeper.storage.engine import driver_connection, write_transaction
from watchkeeper.storage.factory import open_store
from watchkeeper.storage.sql_store import SqlStore

REPEATS = 7
LIVE_ROWS = 100_000
CHUNK = 50_000
WORDS = 5_000
TEMPLATES = [
    "chart computed for user {n} in {ms} ms",
    "GET /api/items/{n} 200 in {ms} ms",
    "payment {id} captured for {word}",
    "cache miss for key {id}",
    "retrying {word} in {n} s (attempt {m})",
    "session {id} opened by user {n}",
    "user {n} asked about {word}",
    "upstream {word} answered {ms} ms late",
    "queue depth {n} for {word}",
    "token usage {n} in, {m} out for {word}",
] + [f"step {index} of {{word}} done in {{ms}} ms" for index in range(20)]
LOGGERS = ["app.chart", "app.pay", "app.api", "uvicorn.access", "app.jobs"]
LEVELS = [10, 20, 20, 20, 20, 20, 30, 30, 40]


def _words() -> list[str]:
    rng = random.Random(7)
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(5, 10))) for _ in range(WORDS)]


def _rows(count: int, end: float, seed: int = 1) -> Iterator[list[tuple[object, ...]]]:
    """wk_logs rows in chunks, oldest first, over the seven days before ``end``."""
    rng = random.Random(seed)
    words = _words()
    start = end - 7 * 86_400
    chunk: list[tuple[object, ...]] = []
    for index in range(count):
        template = TEMPLATES[index % len(TEMPLATES)]
        message = template.format(
            n=rng.randrange(100_000),
            m=rng.randrange(10),
            ms=rng.randrange(5_000),
            id=f"{rng.getrandbits(48):012x}",
            word=words[rng.randrange(WORDS)],
        )
        chunk.append(
            (
                start + 7 * 86_400 * index / count,
                LEVELS[index % len(LEVELS)],
                LOGGERS[index % len(LOGGERS)],
                message,
                None,
                None,
                "api",
                "host-1",
                f"user-{rng.randrange(1000)}",
                None,
                None if index % 4 else f'{{"region": "{words[index % 50]}"}}',
            )
        )
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


_COLUMNS = (
    "time, level, logger, message, trace_id, span_id, service, instance, user_id, org_id, "
    "attributes"
)


def insert(store: SqlStore, rows: Iterator[list[tuple[object, ...]]]) -> int:
    """Rows inserted, chunk by chunk, each chunk in one transaction."""
    count = 0
    for chunk in rows:
        with write_transaction(store.engine) as connection:
            driver = driver_connection(connection)
            if store.dialect is Dialect.SQLITE:
                placeholders = ", ".join("?" * 11)
                driver.executemany(
                    f"INSERT INTO wk_logs ({_COLUMNS}) VALUES ({placeholders})", chunk
                )
            else:
                with (
                    driver.cursor() as cursor,
                    cursor.copy(f"COPY wk_logs ({_COLUMNS}) FROM STDIN") as copy,
                ):
                    for row in chunk:
                        copy.write_row(row)
        count += len(chunk)
    return count


@contextmanager
def search_index_built_after(store: SqlStore) -> Iterator[None]:
    """The search index left out of the inserts made inside, then built over all rows at once."""
    with store.engine.connect() as connection:
        match store.dialect:
            case Dialect.SQLITE:
                definitions = [
                    connection.exec_driver_sql(
                        "SELECT sql FROM sqlite_master WHERE name = 'wk_logs_search_insert'"
                    ).scalar_one()
                ]
                connection.exec_driver_sql("DROP TRIGGER wk_logs_search_insert")
            case Dialect.POSTGRESQL:
                named = connection.exec_driver_sql(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'wk_logs' "
                    "AND schemaname = current_schema() "
                    "AND indexname IN ('ix_wk_logs_search', 'ix_wk_logs_message_trgm')"
                ).all()
                definitions = [definition for _, definition in named]
                for name, _ in named:
                    connection.exec_driver_sql(f"DROP INDEX {name}")
            case _:
                assert_never(store.dialect)
        connection.commit()
    yield
    with store.engine.connect() as connection:
        if store.dialect is Dialect.SQLITE:
            connection.exec_driver_sql(
                "INSERT INTO wk_logs_search (wk_logs_search) VALUES ('rebuild')"
            )
        else:
            # Building a GIN index over millions of rows outlasts the store's statement timeout.
            connection.exec_driver_sql("SET statement_timeout = 0")
            connection.exec_driver_sql("SET maintenance_work_mem = '1GB'")
        for definition in definitions:
            connection.exec_driver_sql(definition)
        if store.dialect is Dialect.POSTGRESQL:
            connection.exec_driver_sql("ANALYZE wk_logs")
        connection.commit()


def load(store: SqlStore, count: int, end: float) -> float:
    """Records per second loaded in bulk, the search index built after."""
    began = time.perf_counter()
    with search_index_built_after(store):
        insert(store, _rows(count, end))
    return count / (time.perf_counter() - began)


def live_rate(store: SqlStore, end: float) -> float:
    """Records per second inserted into the full store, every index and trigger in place."""
    began = time.perf_counter()
    inserted = insert(store, _rows(LIVE_ROWS, end, seed=2))
    return inserted / (time.perf_counter() - began)


def median_ms(call: Callable[[], object]) -> float:
    call()
    timings = []
    for _ in range(REPEATS):
        began = time.perf_counter()
        call()
        timings.append(time.perf_counter() - began)
    return statistics.median(timings) * 1000


def queries(store: SqlStore, end: float) -> list[tuple[str, float, float, int]]:
    """(query, full-text ms, substring ms, matches on the first page)."""
    window = TimeRange.last(timedelta(hours=24), now=datetime.fromtimestamp(end, UTC))
    everything = Scope.everything()
    rare = _words()[1234]
    cases = [
        ("rare word", rare, rare, 0),
        ("common word (chart)", "chart", "chart", 0),
        ("two words", f"retrying {_words()[42]}", None, 0),
        ("word, level ≥ WARNING", "upstream", "upstream", 30),
    ]
    results = []
    for label, words, substring, level in cases:
        where = LogFilter(query=words)
        found = store.logs(window, everything, level, where=where).items

        def full_text(level: int = level, where: LogFilter = where) -> object:
            return store.logs(window, everything, level, where=where)

        def like(level: int = level, substring: str | None = substring) -> object:
            return store.logs(window, everything, level, substring)

        fts = median_ms(full_text)
        scan = median_ms(like) if substring else float("nan")
        results.append((label, fts, scan, len(found)))
    return results


@contextmanager
def fresh_store(name: str) -> Iterator[SqlStore]:
    """A migrated store in a scratch SQLite file or PostgreSQL schema, removed afterwards."""
    settings = sqlite_settings() if name == "sqlite" else postgres_settings()
    with settings as chosen:
        store = open_store(chosen)
        try:
            yield store
        finally:
            store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--stores", nargs="+", default=["sqlite", "postgresql"])
    arguments = parser.parse_args()
    os.nice(10)
    end = time.time()
    for name in arguments.stores:
        if name == "postgresql" and not postgres_available():
            print("PostgreSQL is not reachable: skipped")
            continue
        for count in arguments.rows:
            with fresh_store(name) as store:
                rate = load(store, count, end)
                print(
                    f"{name}, {count:,} records: loaded in bulk at {rate:,.0f} records/s",
                    flush=True,
                )
                for label, fts, like, found in queries(store, end):
                    print(
                        f"  {label:<24} full-text {fts:8.1f} ms   substring {like:8.1f} ms"
                        f"   ({found} on the page)",
                        flush=True,
                    )
                print(
                    f"  then {LIVE_ROWS:,} more inserted at {live_rate(store, end):,.0f} records/s"
                    " with every index live",
                    flush=True,
                )


if __name__ == "__main__":
    main()
