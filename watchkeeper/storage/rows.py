"""Turning a batch into the plain rows the writer loads, before any transaction starts.

Rows are built outside the transaction so SQLite's write lock is held only while they go in, and
so a value that cannot become a row rejects the batch instead of looking like a database error.

Text from users (identity headers, JWT claims, attributes, log messages, snapshots) must never
cost an event, so every row is made storable here, the same way on both stores:

* NUL characters are removed from every text value: PostgreSQL cannot store them in text.
* Lone surrogates (``"\\ud800"``, which a Python string can hold but UTF-8 cannot encode) are
  replaced by U+FFFD, the replacement character, in text and JSON alike.
* Identity values (user, organisation and session ids, also as rollup values) longer than
  :data:`IDENTITY_LIMIT` characters are cut, ending in ``…`` and a short hash of the whole value:
  distinct ids stay distinct, and PostgreSQL's index rows (some 2,700 bytes) can hold them.
* A value that is not text in a text column (a number given as a validation's expectation, an
  operation's name) is stored as its text (``str``), alike on both stores.
* In JSON (attributes, snapshot data), integers beyond 64 bits are written as their decimal text;
  a NUL needs nothing there, as JSON writes it ``\\u0000``.

Checking costs a batch without such values (nearly every batch) a few C-level passes per text
column; only a batch that has one pays for rebuilding its rows. What still cannot be written
(a token count beyond 64 bits, a span name too long to index) rejects the batch, and the flush
worker isolates and drops just the events at fault.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from operator import is_not, itemgetter
from typing import Any

import orjson
from sqlalchemy import CHAR, String, Table

from watchkeeper.model.batch import Batch
from watchkeeper.model.error_groups import ErrorDelta, log_fingerprint
from watchkeeper.model.events import LogRecord
from watchkeeper.model.ids import format_span_id, format_trace_id
from watchkeeper.model.rollups import Dimension, RollupDelta, RollupKey
from watchkeeper.model.sessions import SessionDelta, SessionKey
from watchkeeper.storage.schema import (
    NO_ORGANISATION,
    logs,
    metric_points,
    snapshots,
    spans,
    validations,
)

Row = tuple[Any, ...]
NUL = "\x00"
REPLACEMENT = "\ufffd"
IDENTITY_LIMIT = 256
"""Characters kept of a user, organisation or session id, in every table."""
_SURROGATES = re.compile("[\ud800-\udfff]")
_JSON_COLUMNS = frozenset({"attributes", "data"})
_IDENTITY_COLUMNS = frozenset({"user_id", "org_id", "session_id"})
_IDENTITY_DIMENSIONS = frozenset({Dimension.USER.value, Dimension.ORG.value})
_JSON_INT_RANGE = range(-(2**63), 2**64)  # what orjson writes as a number
_JSON_DEPTH = 64


def _shortened(value: str, limit: int) -> str:
    digest = hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=6).hexdigest()
    marker = f"…{digest}"
    return value[: limit - len(marker)] + marker


def clean_text(value: str, limit: int | None = None) -> str:
    """``value`` as both stores can hold it: no NUL, no lone surrogate, at most ``limit`` long."""
    if NUL in value:
        value = value.replace(NUL, "")
    if not value.isascii():
        value = _SURROGATES.sub(REPLACEMENT, value)
    if limit is not None and len(value) > limit:
        value = _shortened(value, limit)
    return value


def _dirty(values: Sequence[str], limit: int | None) -> bool:
    """Whether any of a column's values needs cleaning. Raises TypeError for a non-string."""
    # One join searches in C: a column with nothing to clean (nearly every one) pays a fraction
    # of a microsecond a value instead of a Python-level test of each.
    joined = "".join(values)
    if NUL in joined or (not joined.isascii() and _SURROGATES.search(joined) is not None):
        return True
    # Only when the column's text is long at all is the longest value looked for.
    return limit is not None and len(joined) > limit and max(map(len, values)) > limit


def _json_safe(value: Any, depth: int = 0) -> Any:
    """``value`` with what orjson refuses made encodable: surrogates replaced, big ints as text."""
    if isinstance(value, str):
        return _SURROGATES.sub(REPLACEMENT, value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return value if value in _JSON_INT_RANGE else str(value)
    if depth > _JSON_DEPTH:
        return _SURROGATES.sub(REPLACEMENT, repr(value))
    if isinstance(value, Mapping):
        return {
            _json_safe(key, depth + 1) if isinstance(key, str | int) else key: _json_safe(
                item, depth + 1
            )
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_safe(item, depth + 1) for item in value]
    return value


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
    # Only values orjson refused come here: lone surrogates, integers beyond 64 bits, cycles.
    safe = _json_safe(value)
    try:
        return orjson.dumps(safe, default=_text_of, option=_ORJSON_OPTIONS).decode()
    except (orjson.JSONEncodeError, TypeError):
        pass
    try:
        return _encode(safe)  # writes any surrogate left as an escape: encodable still
    except (TypeError, ValueError):  # keys that are not strings, circular references
        return json.dumps({"unserialisable": repr(value)})


def _text_of(value: object) -> str:
    return _SURROGATES.sub(REPLACEMENT, str(value))


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
            r.session_id,
            r.exception_type,
            r.exception,
            _error_group(r),
            r.source,
        )
        for r in batch.logs
    ]


def _error_group(record: LogRecord) -> str | None:
    found = log_fingerprint(record)
    return None if found is None else found[0].hash


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
    limits: tuple[int | None, ...]
    """The longest value each text position takes (identity columns), in the same order."""


def _raw(table: Table, build: Callable[[Batch], list[Row]]) -> RawTable:
    columns = tuple(column.name for column in table.columns if column.name != "id")
    text_positions = tuple(
        position
        for position, name in enumerate(columns)
        if isinstance(table.c[name].type, String)
        and not isinstance(table.c[name].type, CHAR)
        and name not in _JSON_COLUMNS
    )
    limits = tuple(
        IDENTITY_LIMIT if columns[position] in _IDENTITY_COLUMNS else None
        for position in text_positions
    )
    return RawTable(table, build, columns, text_positions, limits)


RAW_TABLES = (
    _raw(spans, span_rows),
    _raw(logs, log_rows),
    _raw(metric_points, metric_rows),
    _raw(snapshots, snapshot_rows),
    _raw(validations, validation_rows),
)


def _column_dirty(rows: list[Row], position: int, limit: int | None) -> bool:
    """Whether a text column holds a value to clean, or a value that is not text at all."""
    values = list(filter(_present, map(itemgetter(position), rows)))
    try:
        return _dirty(values, limit)
    except TypeError:  # not text (a number given as a validation's expectation): made text
        return True


_present = partial(is_not, None)


def clean_rows(
    rows: list[Row], positions: Sequence[int], limits: Sequence[int | None]
) -> list[Row]:
    """``rows``, or (when a text value needs it) new rows with every text value cleaned."""
    if not rows:
        return rows
    dirty = [
        (position, limit)
        for position, limit in zip(positions, limits, strict=True)
        if _column_dirty(rows, position, limit)
    ]
    if not dirty:
        return rows
    cleaned = []
    for row in rows:
        values = list(row)
        for position, limit in dirty:
            value = values[position]
            if value is not None:
                # Its text, as a text column holds it: binary COPY sends text columns as text.
                text = value if isinstance(value, str) else str(value)
                values[position] = clean_text(text, limit)
        cleaned.append(tuple(values))
    return cleaned


def _key_limit(key: RollupKey) -> int | None:
    return IDENTITY_LIMIT if key.dimension in _IDENTITY_DIMENSIONS else None


def _clean_rollups(
    deltas: Mapping[RollupKey, RollupDelta],
) -> Mapping[RollupKey, RollupDelta]:
    if not deltas:
        return deltas
    identities = [key.value for key in deltas if key.dimension in _IDENTITY_DIMENSIONS]
    if not (
        _dirty([key.name for key in deltas], None)
        or _dirty([key.value for key in deltas], None)
        or _dirty(identities, IDENTITY_LIMIT)
    ):
        return deltas
    # Two keys can become one once cleaned; fresh deltas keep the caller's batch unchanged.
    cleaned: dict[RollupKey, RollupDelta] = {}
    for key, delta in deltas.items():
        name, value = clean_text(key.name), clean_text(key.value, _key_limit(key))
        if (name, value) != (key.name, key.value):
            key = key._replace(name=name, value=value)  # noqa: PLW2901
        cleaned.setdefault(key, RollupDelta()).merge(delta)
    return cleaned


def _identity(value: str | None) -> str | None:
    return value if value is None else clean_text(value, IDENTITY_LIMIT)


def session_rows(deltas: Mapping[SessionKey, SessionDelta]) -> list[dict[str, Any]]:
    """One row per session, in key order so concurrent writers lock rows in one order."""
    merged: dict[tuple[str, str], SessionDelta] = {}
    for (session_id, org_id), delta in deltas.items():
        cleaned = _identity(session_id)
        if not cleaned:
            continue
        key = (cleaned, _identity(org_id) or NO_ORGANISATION)
        if key in merged:
            merged[key].merge(delta)
        else:  # a copy: merging must not change the caller's batch
            merged[key] = replace(delta, user_id=_identity(delta.user_id))
    return [
        {
            "session_id": session_id,
            "user_id": _identity(delta.user_id),
            "org_id": org_id,
            "first_seen": delta.first_seen,
            "last_seen": delta.last_seen,
            "ended_at": delta.ended_at,
            "spans": delta.spans,
            "errors": delta.errors,
            "input_tokens": delta.input_tokens,
            "output_tokens": delta.output_tokens,
            "cost": delta.cost,
        }
        for (session_id, org_id), delta in sorted(merged.items())
    ]


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    raw: list[tuple[RawTable, list[Row]]]
    """Only the tables that have rows."""
    rollups: Mapping[RollupKey, RollupDelta]
    sessions: list[dict[str, Any]]
    errors: list[ErrorDelta]
    """Error groups' occurrences, in fingerprint order (one lock order for every writer)."""


def prepare(batch: Batch) -> PreparedBatch:
    """Every row the batch writes, made storable. Raises whatever a malformed event raises."""
    raw = []
    for table in RAW_TABLES:
        rows = table.build(batch)
        if rows:
            raw.append((table, clean_rows(rows, table.text_positions, table.limits)))
    return PreparedBatch(
        raw,
        _clean_rollups(batch.rollups),
        session_rows(batch.sessions),
        [batch.errors[key] for key in sorted(batch.errors)],
    )
