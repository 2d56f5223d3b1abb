"""Error groups: merging a batch's occurrences in, and reading groups with their flags.

Errors are few beside spans, so the writer goes through SQLAlchemy's upserts (one statement per
table, executemany) inside the batch's transaction. A group's row holds its lifetime figures and
status; counts per minute and organisation answer every window (the list, the sparkline, the
spike baseline) without reading raw spans or logs.

Status: a group is created ``new``; the writer moves it to ``ongoing`` once it has been seen for
:data:`NEW_FOR` and to ``regressed`` when an occurrence arrives after it was resolved; people set
``ongoing``, ``resolved`` and ``ignored`` through the API.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, assert_never

from sqlalchemy import ColumnElement, and_, case, desc, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from watchkeeper.model.error_groups import MINUTE, ErrorDelta, ErrorFlag, ErrorStatus
from watchkeeper.model.query import Scope, SpikeRule, TimeRange
from watchkeeper.model.stored import ErrorGroup, ErrorGroupDetail, StoredErrorSample
from watchkeeper.storage.dialect import Dialect
from watchkeeper.storage.rows import IDENTITY_LIMIT, clean_text
from watchkeeper.storage.schema import (
    error_counts,
    error_fingerprints,
    error_groups,
    error_samples,
    error_users,
)
from watchkeeper.storage.sql_queries import MAX_PAGE, as_time, check_limit

NEW_FOR = 24 * 3600.0
"""Seconds a group stays ``new`` after it was first seen (then ``ongoing``)."""
SPARKLINE_BUCKETS = 24
MAX_SAMPLES = 20
MAX_CANDIDATES = 10_000
"""Most groups of a window whose flags are computed when the list is filtered by a flag."""


def _text(value: str | None, limit: int | None = None) -> str | None:
    return None if value is None else clean_text(value, limit)


def _insert(dialect: Dialect, table: Any) -> Any:
    match dialect:
        case Dialect.SQLITE:
            return sqlite.insert(table)
        case Dialect.POSTGRESQL:
            return postgresql.insert(table)
        case _:
            assert_never(dialect)


def write_error_groups(
    connection: Connection, dialect: Dialect, deltas: Sequence[ErrorDelta]
) -> None:
    """Merge a batch's error occurrences, inside the caller's transaction."""
    if not deltas:
        return
    hashes = {
        hash_ for delta in deltas for hash_ in (delta.fingerprint.hash, *delta.fingerprint.previous)
    }
    known: dict[str, str] = dict(
        connection.execute(
            select(error_fingerprints.c.fingerprint, error_fingerprints.c.group_id).where(
                error_fingerprints.c.fingerprint.in_(sorted(hashes))
            )
        ).all()
    )
    owners = [_owner(delta, known) for delta in deltas]
    _upsert_groups(connection, dialect, deltas, owners)
    aliases = _insert(dialect, error_fingerprints)
    connection.execute(
        aliases.on_conflict_do_nothing(index_elements=[error_fingerprints.c.fingerprint]),
        [
            {
                "fingerprint": delta.fingerprint.hash,
                "group_id": owner,
                "grouping_version": delta.fingerprint.version,
            }
            for delta, owner in zip(deltas, owners, strict=True)
        ],
    )
    _upsert_counts(connection, dialect, deltas, owners)
    _upsert_users(connection, dialect, deltas, owners)
    _insert_samples(connection, dialect, deltas, owners)


def _owner(delta: ErrorDelta, known: dict[str, str]) -> str:
    """The group an occurrence belongs to: the one its hash, or an earlier version's, found."""
    for hash_ in (delta.fingerprint.hash, *delta.fingerprint.previous):
        if hash_ in known:
            return known[hash_]
    return delta.fingerprint.hash


def _upsert_groups(
    connection: Connection, dialect: Dialect, deltas: Sequence[ErrorDelta], owners: list[str]
) -> None:
    merged: dict[str, dict[str, Any]] = {}
    for delta, owner in zip(deltas, owners, strict=True):
        fingerprint = delta.fingerprint
        row = merged.get(owner)
        if row is not None:  # two hashes of one group in a batch
            row["first_seen"] = min(row["first_seen"], delta.first_seen)
            row["last_seen"] = max(row["last_seen"], delta.last_seen)
            row["total"] += delta.count
            continue
        merged[owner] = {
            "fingerprint": owner,
            "grouping_version": fingerprint.version,
            "source": delta.source.value,
            "basis": fingerprint.basis.value,
            "title": _text(fingerprint.title) or "",
            "error_type": _text(fingerprint.error_type),
            "culprit": _text(fingerprint.culprit),
            "frames": json.dumps(fingerprint.frames) if fingerprint.frames else None,
            "first_seen": delta.first_seen,
            "last_seen": delta.last_seen,
            "total": delta.count,
            "status": ErrorStatus.NEW.value,
            "status_changed": None,
        }
    statement = _insert(dialect, error_groups)
    stored, incoming = error_groups.c, statement.excluded
    least, greatest = _extremes(dialect)
    comes_back = and_(
        stored.status == ErrorStatus.RESOLVED.value,
        incoming.last_seen > func.coalesce(stored.status_changed, 0.0),
    )
    settles = and_(
        stored.status == ErrorStatus.NEW.value,
        greatest(stored.last_seen, incoming.last_seen) - stored.first_seen >= NEW_FOR,
    )
    statement = statement.on_conflict_do_update(
        index_elements=[stored.fingerprint],
        set_={
            "first_seen": least(stored.first_seen, incoming.first_seen),
            "last_seen": greatest(stored.last_seen, incoming.last_seen),
            "total": stored.total + incoming.total,
            "status": case(
                (comes_back, ErrorStatus.REGRESSED.value),
                (settles, ErrorStatus.ONGOING.value),
                else_=stored.status,
            ),
            "status_changed": case((comes_back, incoming.last_seen), else_=stored.status_changed),
        },
    )
    connection.execute(statement, [merged[owner] for owner in sorted(merged)])


def _extremes(dialect: Dialect) -> tuple[Any, Any]:
    match dialect:
        case Dialect.SQLITE:  # two-argument min() and max() are SQLite's LEAST and GREATEST
            return func.min, func.max
        case Dialect.POSTGRESQL:
            return func.least, func.greatest
        case _:
            assert_never(dialect)


def _upsert_counts(
    connection: Connection, dialect: Dialect, deltas: Sequence[ErrorDelta], owners: list[str]
) -> None:
    counts: dict[tuple[str, int, str], int] = defaultdict(int)
    for delta, owner in zip(deltas, owners, strict=True):
        for (minute, org_id), count in delta.minutes.items():
            counts[owner, minute, _text(org_id, IDENTITY_LIMIT) or ""] += count
    statement = _insert(dialect, error_counts)
    statement = statement.on_conflict_do_update(
        index_elements=[error_counts.c.group_id, error_counts.c.bucket, error_counts.c.org_id],
        set_={"count": error_counts.c["count"] + statement.excluded["count"]},
    )
    connection.execute(
        statement,
        [
            {"group_id": owner, "bucket": minute, "org_id": org_id, "count": count}
            for (owner, minute, org_id), count in sorted(counts.items())
        ],
    )


def _upsert_users(
    connection: Connection, dialect: Dialect, deltas: Sequence[ErrorDelta], owners: list[str]
) -> None:
    users: dict[tuple[str, str], float] = {}
    for delta, owner in zip(deltas, owners, strict=True):
        for user_id, seen in delta.users.items():
            key = (owner, _text(user_id, IDENTITY_LIMIT) or "")
            users[key] = max(users.get(key, seen), seen)
    if not users:
        return
    statement = _insert(dialect, error_users)
    _, greatest = _extremes(dialect)
    statement = statement.on_conflict_do_update(
        index_elements=[error_users.c.group_id, error_users.c.user_id],
        set_={"last_seen": greatest(error_users.c.last_seen, statement.excluded.last_seen)},
    )
    connection.execute(
        statement,
        [
            {"group_id": owner, "user_id": user_id, "last_seen": seen}
            for (owner, user_id), seen in sorted(users.items())
        ],
    )


def _insert_samples(
    connection: Connection, dialect: Dialect, deltas: Sequence[ErrorDelta], owners: list[str]
) -> None:
    samples: dict[tuple[str, int], dict[str, Any]] = {}
    for delta, owner in zip(deltas, owners, strict=True):
        for minute, sample in delta.samples.items():
            samples.setdefault(
                (owner, minute),
                {
                    "group_id": owner,
                    "bucket": minute,
                    "time": sample.time,
                    "trace_id": sample.trace_id,
                    "span_id": sample.span_id,
                    "message": _text(sample.message) or "",
                    "detail": _text(sample.detail),
                    "user_id": _text(sample.user_id, IDENTITY_LIMIT),
                    "org_id": _text(sample.org_id, IDENTITY_LIMIT),
                    "session_id": _text(sample.session_id, IDENTITY_LIMIT),
                },
            )
    statement = _insert(dialect, error_samples).on_conflict_do_nothing(
        index_elements=[error_samples.c.group_id, error_samples.c.bucket]
    )
    connection.execute(statement, [samples[key] for key in sorted(samples)])


def set_status(connection: Connection, group_id: str, status: ErrorStatus, now: float) -> bool:
    """Set a group's status; False when there is no such group."""
    statement = (
        update(error_groups)
        .where(error_groups.c.fingerprint == group_id)
        .values(status=status.value, status_changed=now)
    )
    return bool(connection.execute(statement).rowcount)


def _minute(seconds: float) -> int:
    return math.ceil(seconds / MINUTE) * MINUTE


def _count_conditions(start: float, end: float, scope: Scope) -> list[ColumnElement[bool]]:
    """Counts of the minutes that start inside ``[start, end)``, within the scope."""
    conditions = [error_counts.c.bucket >= _minute(start), error_counts.c.bucket < _minute(end)]
    if scope.org_id is not None:
        conditions.append(error_counts.c.org_id == scope.org_id)
    if scope.user_id is not None:
        conditions.append(
            error_counts.c.group_id.in_(
                select(error_users.c.group_id).where(error_users.c.user_id == scope.user_id)
            )
        )
    return conditions


def error_group_list(
    connection: Connection,
    time_range: TimeRange,
    scope: Scope,
    limit: int,
    status: ErrorStatus | None,
    flag: ErrorFlag | None,
    spike: SpikeRule,
) -> list[ErrorGroup]:
    """Groups with occurrences in the window, most frequent first, with their flags."""
    check_limit(limit, MAX_PAGE)
    start, end = time_range.start_ts, time_range.end_ts
    occurrences = func.sum(error_counts.c["count"]).label("occurrences")
    in_window = (
        select(error_counts.c.group_id, occurrences)
        .where(*_count_conditions(start, end, scope))
        .group_by(error_counts.c.group_id)
        .subquery()
    )
    query = select(error_groups, in_window.c.occurrences).join(
        in_window, in_window.c.group_id == error_groups.c.fingerprint
    )
    if status is not None:
        query = query.where(error_groups.c.status == status.value)
    if flag is not None:
        query = query.where(error_groups.c.status != ErrorStatus.IGNORED.value)
    match flag:
        case ErrorFlag.NEW:
            query = query.where(error_groups.c.first_seen >= start)
        case ErrorFlag.REGRESSED:
            query = query.where(error_groups.c.status == ErrorStatus.REGRESSED.value)
        case ErrorFlag.SPIKE | None:
            pass
        case _:
            assert_never(flag)
    query = query.order_by(
        desc(in_window.c.occurrences), desc(error_groups.c.last_seen), error_groups.c.fingerprint
    ).limit(MAX_CANDIDATES if flag is ErrorFlag.SPIKE else limit)
    rows = connection.execute(query).all()
    ids = [row.fingerprint for row in rows]
    spiking = _spiking(connection, ids, end, scope, spike)
    if flag is ErrorFlag.SPIKE:
        rows = [row for row in rows if row.fingerprint in spiking][:limit]
        ids = [row.fingerprint for row in rows]
    users = _users(connection, ids)
    series = _series(connection, ids, start, end, scope)
    samples = _latest_samples(connection, ids, scope)
    return [_group(row, row.occurrences, start, spiking, users, series, samples) for row in rows]


def _group(
    row: Any,
    occurrences: int,
    start: float,
    spiking: set[str],
    users: dict[str, int],
    series: dict[str, list[int]],
    samples: dict[str, Any],
) -> ErrorGroup:
    group_id = row.fingerprint
    flags = []
    if row.status == ErrorStatus.IGNORED.value:
        pass  # an ignored group raises no flag: alert rules stay quiet about it
    elif row.first_seen >= start:
        flags.append(ErrorFlag.NEW.value)
    if group_id in spiking and row.status != ErrorStatus.IGNORED.value:
        flags.append(ErrorFlag.SPIKE.value)
    if row.status == ErrorStatus.REGRESSED.value:
        flags.append(ErrorFlag.REGRESSED.value)
    sample = samples.get(group_id)
    return ErrorGroup(
        id=group_id,
        source=row.source,
        basis=row.basis,
        title=row.title,
        error_type=row.error_type,
        culprit=row.culprit,
        status=row.status,
        first_seen=as_time(row.first_seen),
        last_seen=as_time(row.last_seen),
        count=int(occurrences or 0),
        total=int(row.total),
        users=users.get(group_id, 0),
        flags=flags,
        series=series.get(group_id, [0] * SPARKLINE_BUCKETS),
        sample_trace_id=None if sample is None else sample.trace_id,
        sample_message=None if sample is None else sample.message,
        grouping_version=row.grouping_version,
    )


def _spiking(
    connection: Connection, ids: list[str], end: float, scope: Scope, rule: SpikeRule
) -> set[str]:
    if not ids:
        return set()
    recent_start = end - rule.recent.total_seconds()
    baseline_start = recent_start - rule.baseline.total_seconds()
    is_recent = error_counts.c.bucket >= _minute(recent_start)
    query = (
        select(
            error_counts.c.group_id,
            func.sum(case((is_recent, error_counts.c["count"]), else_=0)),
            func.sum(case((is_recent, 0), else_=error_counts.c["count"])),
        )
        .where(error_counts.c.group_id.in_(ids), *_count_conditions(baseline_start, end, scope))
        .group_by(error_counts.c.group_id)
    )
    share = rule.recent / rule.baseline
    return {
        group_id
        for group_id, recent, baseline in connection.execute(query)
        if int(recent) >= rule.min_count and int(recent) > rule.factor * int(baseline) * share
    }


def _users(connection: Connection, ids: list[str]) -> dict[str, int]:
    if not ids:
        return {}
    query = (
        select(error_users.c.group_id, func.count())
        .where(error_users.c.group_id.in_(ids))
        .group_by(error_users.c.group_id)
    )
    return dict(connection.execute(query).all())


def _series(
    connection: Connection, ids: list[str], start: float, end: float, scope: Scope
) -> dict[str, list[int]]:
    """Each group's counts in :data:`SPARKLINE_BUCKETS` equal parts of the window."""
    if not ids:
        return {}
    first, last = _minute(start), _minute(end)
    width = max(MINUTE, math.ceil((last - first) / SPARKLINE_BUCKETS / MINUTE) * MINUTE)
    part = func.floor((error_counts.c.bucket - literal(first)) / literal(float(width)))
    query = (
        select(error_counts.c.group_id, part.label("part"), func.sum(error_counts.c["count"]))
        .where(error_counts.c.group_id.in_(ids), *_count_conditions(start, end, scope))
        .group_by(error_counts.c.group_id, part)
    )
    series: dict[str, list[int]] = {group_id: [0] * SPARKLINE_BUCKETS for group_id in ids}
    for group_id, position, count in connection.execute(query):
        index = min(int(position), SPARKLINE_BUCKETS - 1)
        series[group_id][index] += int(count)
    return series


def _sample_scope(scope: Scope) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if scope.org_id is not None:
        conditions.append(error_samples.c.org_id == scope.org_id)
    if scope.user_id is not None:
        conditions.append(error_samples.c.user_id == scope.user_id)
    return conditions


def _latest_samples(connection: Connection, ids: list[str], scope: Scope) -> dict[str, Any]:
    if not ids:
        return {}
    latest = (
        select(error_samples.c.group_id, func.max(error_samples.c.bucket).label("bucket"))
        .where(error_samples.c.group_id.in_(ids), *_sample_scope(scope))
        .group_by(error_samples.c.group_id)
        .subquery()
    )
    query = select(error_samples).join(
        latest,
        and_(
            latest.c.group_id == error_samples.c.group_id,
            latest.c.bucket == error_samples.c.bucket,
        ),
    )
    return {row.group_id: row for row in connection.execute(query)}


def error_group_detail(
    connection: Connection, group_id: str, time_range: TimeRange, scope: Scope, spike: SpikeRule
) -> ErrorGroupDetail | None:
    row = connection.execute(
        select(error_groups).where(error_groups.c.fingerprint == group_id)
    ).one_or_none()
    if row is None:
        return None
    start, end = time_range.start_ts, time_range.end_ts
    occurrences = connection.execute(
        select(func.coalesce(func.sum(error_counts.c["count"]), 0)).where(
            error_counts.c.group_id == group_id, *_count_conditions(start, end, scope)
        )
    ).scalar_one()
    if scope != Scope.everything() and not _visible(connection, group_id, scope):
        return None
    ids = [group_id]
    samples = connection.execute(
        select(error_samples)
        .where(error_samples.c.group_id == group_id, *_sample_scope(scope))
        .order_by(desc(error_samples.c.bucket))
        .limit(MAX_SAMPLES)
    ).all()
    group = _group(
        row,
        occurrences,
        start,
        _spiking(connection, ids, end, scope, spike),
        _users(connection, ids),
        _series(connection, ids, start, end, scope),
        {group_id: samples[0]} if samples else {},
    )
    fingerprints = connection.execute(
        select(error_fingerprints.c.fingerprint)
        .where(error_fingerprints.c.group_id == group_id)
        .order_by(error_fingerprints.c.fingerprint)
    ).scalars()
    return ErrorGroupDetail(
        group=group,
        frames=[(module, function) for module, function in json.loads(row.frames or "[]")],
        samples=[
            StoredErrorSample(
                time=as_time(sample.time),
                trace_id=sample.trace_id,
                span_id=sample.span_id,
                message=sample.message,
                detail=sample.detail,
                user_id=sample.user_id,
                org_id=sample.org_id,
                session_id=sample.session_id,
            )
            for sample in samples
        ],
        fingerprints=list(fingerprints),
    )


def _visible(connection: Connection, group_id: str, scope: Scope) -> bool:
    """Whether a narrowed scope has any occurrence of the group (an organisation's, or a
    user's)."""
    query = select(error_counts.c.group_id).where(
        error_counts.c.group_id == group_id, *_count_conditions(0.0, 2.0**62, scope)
    )
    return connection.execute(query.limit(1)).first() is not None
