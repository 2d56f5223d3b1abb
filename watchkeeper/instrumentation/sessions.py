"""Sessions (a conversation, a guidance session, a voice call) and context snapshots.

A session exists as soon as spans carry its id (see the identity extractors); these functions add
explicit starts and ends, and snapshots of what the app knew at a step, attached to the current
span and session. Snapshot data is redacted on the flush worker before it is stored.

Misuse (a wrong type, an empty id) never raises into the app: it is reported as Watchkeeper's
internal error, counted and logged, and raised with its message only in strict mode.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from watchkeeper.model.events import SessionMark, Snapshot
from watchkeeper.recording.default import get_recorder
from watchkeeper.recording.recorder import Recorder
from watchkeeper.recording.spans import current_span

SNAPSHOT_NAME_LIMIT = 128


def _check_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"{what} must be a non-empty string, got {value!r}")
    return value


def _check_snapshot(name: object, data: object) -> None:
    _check_id(name, "snapshot()'s name")
    if isinstance(name, str) and len(name) > SNAPSHOT_NAME_LIMIT:
        raise ValueError(f"snapshot names are at most {SNAPSHOT_NAME_LIMIT} characters")
    if not isinstance(data, Mapping):
        raise TypeError(
            f"snapshot() needs its data as a mapping (e.g. a dict), got {type(data).__name__}"
        )


def start_session(
    session_id: str,
    user_id: str | None = None,
    org_id: str | None = None,
    recorder: Recorder | None = None,
) -> None:
    """Mark a session's start; the current span (and its children) join the session.

    A session is its id within its organisation: ``org_id``, or else the current span's.
    """
    recorder = recorder or get_recorder()
    try:
        _check_id(session_id, "start_session()'s session_id")
    except TypeError as error:
        recorder.report_internal_error("start_session()", error)
        return
    span = current_span.get()
    if span is not None:
        span.set_identity(user_id=user_id, org_id=org_id, session_id=session_id)
    if recorder.enabled:
        mark = SessionMark(time.time(), session_id, False, user_id, _org(org_id))
        recorder.submit(mark)


def end_session(
    session_id: str, org_id: str | None = None, recorder: Recorder | None = None
) -> None:
    """Mark a session as ended (a call hung up, a conversation closed).

    The session ended is the one of ``org_id``, or else of the current span's organisation:
    outside a request of the organisation, pass it.
    """
    recorder = recorder or get_recorder()
    try:
        _check_id(session_id, "end_session()'s session_id")
    except TypeError as error:
        recorder.report_internal_error("end_session()", error)
        return
    if recorder.enabled:
        recorder.submit(SessionMark(time.time(), session_id, True, org_id=_org(org_id)))


def _org(org_id: str | None) -> str | None:
    """The organisation a mark belongs to: the one given, or the current identity's."""
    if org_id is not None:
        return org_id
    span = current_span.get()
    return None if span is None else span.org_id


def snapshot(name: str, data: Mapping[str, Any], recorder: Recorder | None = None) -> None:
    """Keep what the app knew at this step, linked to the current span and session."""
    recorder = recorder or get_recorder()
    try:
        _check_snapshot(name, data)
    except (TypeError, ValueError) as error:
        recorder.report_internal_error("snapshot()", error)
        return
    if not recorder.enabled:
        return
    span = current_span.get()
    if span is None:
        record = Snapshot(time.time(), name, dict(data))
    else:
        record = Snapshot(
            time.time(),
            name,
            dict(data),
            span.trace_id,
            span.span_id,
            span.session_id,
            span.user_id,
            span.org_id,
        )
    recorder.submit(record)
