"""Batches the store could not take yet, kept in local files so an outage or a restart loses none.

Built batches wait in memory first (:class:`~watchkeeper.recording.waiting.WaitingBatches`);
only what overflows it, and what is still waiting when the recorder stops, comes here. A short
outage therefore costs no disk I/O, and a long one, or a restart in the middle of one, costs no
events. The idea is Logfire's exporter's disk retry queue.

One file per batch, named ``<nanoseconds>-<pid>-<sequence>-<events>.wkb`` so that names sort
in the order the batches were spooled, and the events a file holds can be counted without
reading it (when it is dropped for space, or found corrupt). A file is written under a hidden
temporary name, synced and renamed, so a crash leaves either a whole file or none.

Several processes may share one directory (``uvicorn --workers``, or a restarted app finding
its predecessor's files). A file is replayed by whoever holds an exclusive ``flock`` on it, and
deleted before the lock is released; a process that obtains the lock on a file already deleted
sees it has no links left and leaves it. A crash between the store's commit and the deletion
replays that batch once more: delivery is at least once, never silently zero.

Contents are spans, logs and the other events as compact JSON (orjson), compressed (zlib, whose
checksum also catches a damaged file). Trace ids are written in hex, since JSON numbers beyond
64 bits are not portable; enums by value. Rollups and sessions are not written: they are rebuilt
from the events on replay, exactly as they were built the first time.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from watchkeeper.model.batch import Batch
from watchkeeper.model.events import (
    LogRecord,
    MetricKind,
    MetricPoint,
    SessionMark,
    Severity,
    Snapshot,
    Span,
    SpanKind,
    SpanStatus,
    ValidationResult,
)
from watchkeeper.model.rollups import build_rollups
from watchkeeper.model.sessions import build_sessions
from watchkeeper.recording.stats import app_events

SUFFIX = ".wkb"
MAGIC = b"WKS1"
# The encoder a file's payload needs: orjson reads integers beyond 64 bits as floats, so a batch
# holding one (in an attribute) is written, and read back, by the standard library instead.
_ORJSON = b"o"
_STDLIB = b"j"
_ORJSON_OPTIONS = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)
_encode_stdlib = json.JSONEncoder(default=str).encode

RESCAN_SECONDS = 2.0
"""How often a process with no files of its own looks for files other processes left."""

STALE_TEMPORARY_SECONDS = 3600.0
"""Age at which a temporary file is taken for the remains of a process that died writing it."""


class CorruptSpoolFile(ValueError):
    """A spool file that cannot be read back into a batch."""


@dataclass(frozen=True, slots=True)
class SpoolFile:
    path: Path
    events: int
    size: int


def events_in(name: str) -> int | None:
    """The event count a spool file's name records, or ``None`` if it is no spool file."""
    if name.startswith(".") or not name.endswith(SUFFIX):
        return None
    parts = name[: -len(SUFFIX)].split("-")
    if len(parts) != 4 or not all(part.isdigit() for part in parts):
        return None
    return int(parts[3])


class Claim:
    """A spool file this process holds the lock on, and the batch read from it."""

    def __init__(self, file: SpoolFile, descriptor: int, batch: Batch) -> None:
        self.file = file
        self.batch = batch
        self._descriptor = descriptor

    def written(self) -> None:
        """The batch is stored: delete the file, then let the lock go."""
        with contextlib.suppress(FileNotFoundError):
            self.file.path.unlink()
        os.close(self._descriptor)

    def release(self) -> None:
        """The store refused the batch: keep the file for a later attempt, by anyone."""
        os.close(self._descriptor)


class Spool:
    """The spool directory as one writer thread of one process sees it.

    ``on_lost(reason, events)`` hears of files dropped to stay within ``max_bytes``
    (``"spool_full"``) and files that could not be read (``"spool_corrupt"``).
    """

    def __init__(
        self,
        directory: Path,
        max_bytes: int,
        on_lost: Callable[[str, int], None],
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._on_lost = on_lost
        self._sequence = 0
        # Known files, oldest first: what this process spooled plus what the last scan found.
        self._files: list[SpoolFile] = []
        self._scanned_at = -RESCAN_SECONDS
        self.scanned = False
        """Whether the directory was looked at yet: until then, files may wait unseen."""
        self.events = 0
        """Events in the files known to this process (read by other threads for stats)."""

    @property
    def files(self) -> int:
        """Files known to wait for the store (read by other threads: one ``len``)."""
        return len(self._files)

    # -- writing -------------------------------------------------------------------------------

    def spill(self, batch: Batch) -> None:
        """Write ``batch`` as the newest file, then drop the oldest files beyond the size cap.

        Raises :class:`OSError` if the file cannot be written (the caller counts the batch).
        """
        payload = encode(batch)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._sequence += 1
        events = app_events(batch)
        name = f"{time.time_ns():020d}-{os.getpid()}-{self._sequence:010d}-{events}{SUFFIX}"
        path = self.directory / name
        temporary = self.directory / f".{name}.tmp"
        try:
            with open(temporary, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except OSError:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise
        self._files.append(SpoolFile(path, events, len(payload)))
        self.events += events
        self._enforce_cap()

    def _enforce_cap(self) -> None:
        # Everyone's files count against the cap, so look at the directory, not just ours.
        files = self._scan()
        total = sum(file.size for file in files)
        for file in files:
            if total <= self.max_bytes or file is files[-1]:
                break
            if self._delete_unclaimed(file):
                total -= file.size
                self._on_lost("spool_full", file.events)
        self._adopt(files)

    def _delete_unclaimed(self, file: SpoolFile) -> bool:
        """Delete ``file`` unless another process is replaying it (it will delete it itself)."""
        try:
            descriptor = os.open(file.path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(descriptor).st_nlink == 0:
                return False
            file.path.unlink()
            return True
        except (BlockingIOError, FileNotFoundError):
            return False
        finally:
            os.close(descriptor)

    # -- replaying -----------------------------------------------------------------------------

    def has_files(self) -> bool:
        """Whether some spooled batch waits; looks at the directory now and then for others'."""
        if not self._files and time.monotonic() - self._scanned_at >= RESCAN_SECONDS:
            self._adopt(self._scan())
        return bool(self._files)

    def claim_oldest(self) -> Claim | None:
        """Lock and read the oldest file nobody else holds; ``None`` when there is none.

        Files held by others are forgotten (a later scan finds them if they come back); a
        corrupt file is deleted and its events reported lost.
        """
        while self._files:
            file = self._files.pop(0)
            self.events -= file.events
            claim = self._claim(file)
            if claim is not None:
                return claim
        return None

    def give_back(self, claim: Claim) -> None:
        """Keep a claimed file first in line after the store refused its batch."""
        claim.release()
        self._files.insert(0, claim.file)
        self.events += claim.file.events

    def _claim(self, file: SpoolFile) -> Claim | None:
        try:
            descriptor = os.open(file.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(descriptor).st_nlink == 0:
                raise FileNotFoundError(file.path)  # replayed and deleted since it was listed
            with os.fdopen(os.dup(descriptor), "rb") as handle:
                payload = handle.read()
            batch = decode(payload)
        except (BlockingIOError, FileNotFoundError):
            os.close(descriptor)
            return None
        except CorruptSpoolFile:
            with contextlib.suppress(FileNotFoundError):
                file.path.unlink()
            os.close(descriptor)
            self._on_lost("spool_corrupt", file.events)
            return None
        except BaseException:
            os.close(descriptor)
            raise
        return Claim(file, descriptor, batch)

    def _scan(self) -> list[SpoolFile]:
        self._scanned_at = time.monotonic()
        self.scanned = True
        found = []
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return []
        for entry in entries:
            events = events_in(entry.name)
            if events is None:
                self._remove_if_stale(entry)
                continue
            try:
                size = entry.stat().st_size
            except FileNotFoundError:
                continue
            found.append(SpoolFile(Path(entry.path), events, size))
        found.sort(key=lambda file: file.path.name)
        return found

    def _remove_if_stale(self, entry: os.DirEntry[str]) -> None:
        # Writing a file takes milliseconds: a temporary file an hour old was left by a crash,
        # and would otherwise hold its space for good.
        if not (entry.name.startswith(".") and entry.name.endswith(".tmp")):
            return
        with contextlib.suppress(OSError):
            if time.time() - entry.stat().st_mtime > STALE_TEMPORARY_SECONDS:
                os.unlink(entry.path)

    def _adopt(self, files: list[SpoolFile]) -> None:
        self._files = [file for file in files if file.path.exists()]
        self.events = sum(file.events for file in self._files)


# -- the file format ---------------------------------------------------------------------------


def encode(batch: Batch) -> bytes:
    document = {
        # The recording process's names, not the replaying one's: the events are its.
        "service": batch.service,
        "instance": batch.instance,
        "spans": [_span(span) for span in batch.spans],
        "logs": [_log(log) for log in batch.logs],
        "metrics": [_metric(point) for point in batch.metrics],
        "snapshots": [_snapshot(snapshot) for snapshot in batch.snapshots],
        "validations": [_validation(result) for result in batch.validations],
        "marks": [_mark(mark) for mark in batch.session_marks],
    }
    try:
        body, encoder = orjson.dumps(document, default=str, option=_ORJSON_OPTIONS), _ORJSON
    except (orjson.JSONEncodeError, TypeError):
        body, encoder = _encode_stdlib(document).encode(), _STDLIB
    return MAGIC + encoder + zlib.compress(body, 1)


def decode(payload: bytes) -> Batch:
    """Read a batch back; rollups and sessions are rebuilt from its events."""
    if payload[: len(MAGIC)] != MAGIC:
        raise CorruptSpoolFile("not a Watchkeeper spool file")
    encoder = payload[len(MAGIC) : len(MAGIC) + 1]
    try:
        body = zlib.decompress(payload[len(MAGIC) + 1 :])
        document = orjson.loads(body) if encoder == _ORJSON else json.loads(body)
        spans = [_span_from(row) for row in document["spans"]]
        marks = [SessionMark(*row) for row in document["marks"]]
        return Batch(
            service=document["service"],
            instance=document["instance"],
            spans=spans,
            logs=[_log_from(row) for row in document["logs"]],
            metrics=[_metric_from(row) for row in document["metrics"]],
            snapshots=[_snapshot_from(row) for row in document["snapshots"]],
            validations=[_validation_from(row) for row in document["validations"]],
            session_marks=marks,
            rollups=build_rollups(spans),
            sessions=build_sessions(spans, marks),
        )
    except (zlib.error, ValueError, TypeError, KeyError, IndexError) as error:
        # orjson.JSONDecodeError is a ValueError; a wrong shape fails in the constructors.
        raise CorruptSpoolFile(f"{type(error).__name__}: {error}") from error


def _hex(identifier: int) -> str:
    return format(identifier, "x")


def _number(value: float | None) -> float:
    # JSON has no NaN or infinity: orjson writes them as null.
    return float("nan") if value is None else value


def _span(span: Span) -> list[Any]:
    return [
        span.kind.value,
        span.name,
        span.start,
        span.duration,
        _hex(span.trace_id),
        span.span_id,
        span.parent_id,
        span.status.value,
        span.operation,
        span.error_type,
        span.error_message,
        span.user_id,
        span.org_id,
        span.session_id,
        span.model,
        span.input_tokens,
        span.output_tokens,
        span.cost,
        span.attributes,
    ]


def _span_from(row: list[Any]) -> Span:
    (kind, name, start, duration, trace_id, span_id, parent_id, status, *rest) = row
    return Span(
        SpanKind(kind),
        name,
        _number(start),
        _number(duration),
        int(trace_id, 16),
        span_id,
        parent_id,
        SpanStatus(status),
        *rest,
    )


def _log(log: LogRecord) -> list[Any]:
    return [
        log.time,
        log.level,
        log.logger,
        log.message,
        _hex(log.trace_id),
        log.span_id,
        log.user_id,
        log.org_id,
        log.attributes,
    ]


def _log_from(row: list[Any]) -> LogRecord:
    (moment, level, logger, message, trace_id, *rest) = row
    return LogRecord(_number(moment), level, logger, message, int(trace_id, 16), *rest)


def _metric(point: MetricPoint) -> list[Any]:
    return [point.time, point.name, point.kind.value, point.value, point.org_id, point.attributes]


def _metric_from(row: list[Any]) -> MetricPoint:
    (moment, name, kind, value, org_id, attributes) = row
    return MetricPoint(_number(moment), name, MetricKind(kind), _number(value), org_id, attributes)


def _snapshot(snapshot: Snapshot) -> list[Any]:
    return [
        snapshot.time,
        snapshot.name,
        snapshot.data,
        _hex(snapshot.trace_id),
        snapshot.span_id,
        snapshot.session_id,
        snapshot.user_id,
        snapshot.org_id,
    ]


def _snapshot_from(row: list[Any]) -> Snapshot:
    (moment, name, data, trace_id, *rest) = row
    if not isinstance(data, Mapping):
        raise TypeError("a snapshot's data must be an object")
    return Snapshot(_number(moment), name, dict(data), int(trace_id, 16), *rest)


def _validation(result: ValidationResult) -> list[Any]:
    return [
        result.time,
        result.validator,
        result.target,
        result.passed,
        result.observed,
        result.expected,
        result.severity.value,
        result.message,
        _hex(result.trace_id),
        result.span_id,
        result.session_id,
        result.user_id,
        result.org_id,
    ]


def _validation_from(row: list[Any]) -> ValidationResult:
    (moment, validator, target, passed, observed, expected, severity, message, trace_id, *rest) = (
        row
    )
    return ValidationResult(
        _number(moment),
        validator,
        target,
        passed,
        observed,
        expected,
        Severity(severity),
        message,
        int(trace_id, 16),
        *rest,
    )


def _mark(mark: SessionMark) -> list[Any]:
    return [mark.time, mark.session_id, mark.ended, mark.user_id, mark.org_id]
