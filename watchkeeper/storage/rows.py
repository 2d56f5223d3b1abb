"""Turning a batch into the plain rows the writer loads, before any transaction starts.

Rows are built outside the transaction so SQLite's write lock is held only while they go in, and
so a value that cannot become a row rejects the batch instead of looking like a database error.

NUL characters are removed from every text value: PostgreSQL cannot store them in text and
would refuse the whole batch. They are removed on SQLite too, so both stores read back the same.
JSON columns need nothing: ``json.dumps`` already writes a NUL as ``\\u0000``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import CHAR, String, Table

from watchkeeper.model.batch import Batch
from watchkeeper.model.ids import format_span_id, format_trace_id
from watchkeeper.model.rollups import RollupDelta, RollupKey
from watchkeeper.model.sessions import SessionDelta
from watchkeeper.storage.schema import logs, metric_points, snapshots, spans, validations

Row = tuple[Any, ...]
NUL = "\x00"
_JSON_COLUMNS = frozenset({"attributes", "data"})


# Dates and dataclasses pass through to default=str, as the standard library's encoder does.
_ORJSON_OPTIONS = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)
# The standard library's encoder, for what orjson refuses (integers beyond 64 bits).
# default=str: one odd value must not make the batch unwritable forever.
_encode = json.JSONEncoder(default=str).encode


def _json(value: Any) -> str:
    # orjson: an attributes column is encoded for nearly every span, and the standard library's
    # encoder cost the flush worker several times more per span.
    try:
        return orjson.dumps(value, default=str, option=_ORJSON_OPTIONS).decode()
    except (orjson.JSONEncodeError, TypeError):
        pass
    try:
        return _encode(value)
    except (TypeError, ValueError):  # keys that are not strings, circular references
        return json.dumps({"unserialisable": repr(value)})


def _attributes(attributes: Mapping[str, Any] | None) -> str | None:
    return _json(attributes) if attributes else None


def _trace(trace_id: int) -> str | None:
    return format_trace_id(trace_id) if trace_id else None


def _span(span_id: int) -> str | None:
    return format_span_id(span_id) if span_id else None


def span_rows(batch: Batch) -> list[Row]:
    service, instance, attrs = batch.service, batch.instance, _attributes
    trace, span_id = format_trace_id, format_span_id
    return [
        (
            trace(s.trace_id),
            span_id(s.span_id),
            span_id(s.parent_id) if s.parent_id else None,
            s.kind._value_,
            s.name,
            s.operation,
            s.start,
            s.duration,
            s.status._value_,
            s.error_type,
            s.error_message,
            service,
            instance,
            s.user_id,
            s.org_id,
            s.session_id,
            s.model,
            s.input_tokens,
            s.output_tokens,
            s.cost,
            attrs(s.attributes),
        )
        for s in batch.spans
    ]


def log_rows(batch: Batch) -> list[Row]:
    service, instance, attrs = batch.service, batch.instance, _attributes
    return [
        (
            r.time,
            int(r.level),
            r.logger,
            r.message,
            _trace(r.trace_id),
            _span(r.span_id),
            service,
            instance,
            r.user_id,
            r.org_id,
            attrs(r.attributes),
        )
        for r in batch.logs
    ]


def metric_rows(batch: Batch) -> list[Row]:
    service, instance, attrs = batch.service, batch.instance, _attributes
    return [
        (p.time, p.name, p.kind.value, p.value, service, instance, p.org_id, attrs(p.attributes))
        for p in batch.metrics
    ]


def snapshot_rows(batch: Batch) -> list[Row]:
    return [
        (
            s.time,
            s.name,
            _json(s.data if isinstance(s.data, Mapping) else {"value": s.data}),
            _trace(s.trace_id),
            _span(s.span_id),
            s.session_id,
            s.user_id,
            s.org_id,
        )
        for s in batch.snapshots
    ]


def _observed(value: object) -> tuple[float | None, str | None]:
    """(number, text): numbers stay comparable, anything else is kept as its text."""
    if value is None:
        return None, None
    if isinstance(value, int | float):
        return float(value), None
    return None, value if isinstance(value, str) else str(value)


def validation_rows(batch: Batch) -> list[Row]:
    return [
        (
            v.time,
            v.validator,
            v.target,
            bool(v.passed),
            *_observed(v.observed),
            v.expected,
            v.severity.value,
            v.message,
            _trace(v.trace_id),
            _span(v.span_id),
            v.session_id,
            v.user_id,
            v.org_id,
        )
        for v in batch.validations
    ]


@dataclass(frozen=True, slots=True)
class RawTable:
    """A table loaded row by row: its columns in row order (all but the id)."""

    table: Table
    build: Callable[[Batch], list[Row]]
    columns: tuple[str, ...]
    text_positions: tuple[int, ...]
    """Where free text may sit; hex ids (CHAR) and JSON columns cannot hold a raw NUL."""


def _raw(table: Table, build: Callable[[Batch], list[Row]]) -> RawTable:
    columns = tuple(column.name for column in table.columns if column.name != "id")
    text_positions = tuple(
        position
        for position, name in enumerate(columns)
        if isinstance(table.c[name].type, String)
        and not isinstance(table.c[name].type, CHAR)
        and name not in _JSON_COLUMNS
    )
    return RawTable(table, build, columns, text_positions)


RAW_TABLES = (
    _raw(spans, span_rows),
    _raw(logs, log_rows),
    _raw(metric_points, metric_rows),
    _raw(snapshots, snapshot_rows),
    _raw(validations, validation_rows),
)


def _strip(value: str) -> str:
    return value.replace(NUL, "")


def _has_nul(value: object) -> bool:
    return isinstance(value, str) and NUL in value


def _rows_have_nul(rows: list[Row], positions: Sequence[int]) -> bool:
    # One join per text column searches in C: a batch without NULs (nearly every batch) pays a
    # fraction of a microsecond a row instead of a Python-level test of every value.
    try:
        return any(
            NUL in "".join(filter(None, map(itemgetter(position), rows))) for position in positions
        )
    except TypeError:  # a non-string in a text column (an integer user id): test value by value
        return any(_has_nul(value) for row in rows for value in row)


def without_nul(rows: list[Row], positions: Sequence[int]) -> list[Row]:
    if not rows or not _rows_have_nul(rows, positions):
        return rows
    return [tuple(_strip(v) if _has_nul(v) else v for v in row) for row in rows]


def _rollups_without_nul(
    deltas: Mapping[RollupKey, RollupDelta],
) -> Mapping[RollupKey, RollupDelta]:
    if not any(_has_nul(key.name) or _has_nul(key.value) for key in deltas):
        return deltas
    # Two keys can become one once stripped; fresh deltas keep the caller's batch unchanged.
    cleaned: dict[RollupKey, RollupDelta] = {}
    for key, delta in deltas.items():
        if _has_nul(key.name) or _has_nul(key.value):
            key = key._replace(name=_strip(key.name), value=_strip(key.value))  # noqa: PLW2901
        cleaned.setdefault(key, RollupDelta()).merge(delta)
    return cleaned


def _text(value: str | None) -> str | None:
    return _strip(value) if value is not None and _has_nul(value) else value


def session_rows(deltas: Mapping[str, SessionDelta]) -> list[dict[str, Any]]:
    """One row per session, in session-id order so concurrent writers lock rows in one order."""
    merged: dict[str, SessionDelta] = {}
    for session_id, delta in deltas.items():
        cleaned = _text(session_id)
        if not cleaned:
            continue
        if cleaned in merged:
            merged[cleaned].merge(delta)
        else:  # a copy: merging must not change the caller's batch
            merged[cleaned] = replace(
                delta, user_id=_text(delta.user_id), org_id=_text(delta.org_id)
            )
    return [
        {
            "session_id": session_id,
            "user_id": _text(delta.user_id),
            "org_id": _text(delta.org_id),
            "first_seen": delta.first_seen,
            "last_seen": delta.last_seen,
            "ended_at": delta.ended_at,
            "spans": delta.spans,
            "errors": delta.errors,
            "input_tokens": delta.input_tokens,
            "output_tokens": delta.output_tokens,
            "cost": delta.cost,
        }
        for session_id, delta in sorted(merged.items())
    ]


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    raw: list[tuple[RawTable, list[Row]]]
    """Only the tables that have rows."""
    rollups: Mapping[RollupKey, RollupDelta]
    sessions: list[dict[str, Any]]


def prepare(batch: Batch) -> PreparedBatch:
    """Every row the batch writes, NUL-free. Raises whatever a malformed event raises."""
    raw = []
    for table in RAW_TABLES:
        rows = table.build(batch)
        if rows:
            raw.append((table, without_nul(rows, table.text_positions)))
    return PreparedBatch(raw, _rollups_without_nul(batch.rollups), session_rows(batch.sessions))
