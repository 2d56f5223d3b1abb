"""A session is its id within its organisation: over the REST API, an organisation's caller sees
only its own session of an id another organisation uses too, and a super admin chooses."""

from __future__ import annotations

import time
from typing import Any

from tests.access.conftest import ACME, BOOTSTRAP, GLOBEX, Deployment
from tests.support.stores import batch_of, span
from watchkeeper.model.events import LogLevel, LogRecord, SessionMark, Snapshot, SpanKind

SHARED = "sess-shared"


def _same_session_in_both(deployment: Deployment) -> None:
    """Session SHARED in acme (two calls, ended) and in globex (one call, seen last), each with
    its own snapshot and log."""
    now = time.time()
    made = [
        (ACME, now - 60, "acme-call", 30, "ua-1"),
        (ACME, now - 50, "acme-call", 30, "ua-1"),
        (GLOBEX, now - 20, "globex-call", 700, "ug-1"),
    ]
    spans = [
        span(start, 1.0, kind=SpanKind.INTEGRATION, name=name, session_id=SHARED, org_id=org,
             user_id=user, input_tokens=tokens, span_id=9000 + index)
        for index, (org, start, name, tokens, user) in enumerate(made)
    ]  # fmt: skip
    snapshots = [
        Snapshot(now - 55, f"{org}-snapshot", {"owner": org}, session_id=SHARED, org_id=org)
        for org in (ACME, GLOBEX)
    ]
    logs = [
        LogRecord(now - 45, LogLevel.INFO, "app", f"{org} log line", org_id=org, session_id=SHARED)
        for org in (ACME, GLOBEX)
    ]
    end = SessionMark(now - 40, SHARED, True, org_id=ACME)
    deployment.store.write(batch_of(spans, snapshots=snapshots, logs=logs, session_marks=[end]))


def _get(deployment: Deployment, token: str, path: str, **query: str) -> Any:
    with deployment.client(token) as client:
        answer = client.get(f"/api/v1/{path}", params=query)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _status(deployment: Deployment, token: str, path: str, **query: str) -> int:
    with deployment.client(token) as client:
        return client.get(f"/api/v1/{path}", params=query).status_code


def test_an_organisation_sees_only_its_own_session_of_a_shared_id(
    deployment: Deployment,
) -> None:
    _same_session_in_both(deployment)
    _, acme = deployment.make_key("acme-admin", "org_admin", org_id=ACME)

    listed = _get(deployment, acme, "sessions", search=SHARED)["items"]
    assert [(s["org_id"], s["spans"], s["input_tokens"]) for s in listed] == [(ACME, 2, 60)]

    detail = _get(deployment, acme, f"sessions/{SHARED}")
    session = detail["session"]
    assert (session["org_id"], session["spans"], session["input_tokens"]) == (ACME, 2, 60)
    assert session["ended_at"] is not None
    assert {root["span"]["name"] for root in detail["roots"]} == {"acme-call"}
    assert [s["name"] for s in detail["snapshots"]] == ["acme-snapshot"]
    logs = _get(deployment, acme, f"sessions/{SHARED}/logs")["items"]
    assert [log["message"] for log in logs] == ["acme log line"]
    assert "globex" not in str([listed, detail, logs])

    # Naming the other organisation finds nothing of it.
    assert _status(deployment, acme, f"sessions/{SHARED}", org_id=GLOBEX) == 404
    assert _get(deployment, acme, f"sessions/{SHARED}/logs", org_id=GLOBEX)["items"] == []
    assert _get(deployment, acme, f"sessions/{SHARED}", org_id=ACME)["session"] == session


def test_a_super_admin_lists_both_and_names_the_organisation_it_reads(
    deployment: Deployment,
) -> None:
    _same_session_in_both(deployment)

    listed = _get(deployment, BOOTSTRAP, "sessions", search=SHARED)["items"]
    assert sorted((s["org_id"], s["spans"]) for s in listed) == [(ACME, 2), (GLOBEX, 1)]

    # Without an organisation, the session seen last; with one, that organisation's.
    latest = _get(deployment, BOOTSTRAP, f"sessions/{SHARED}")
    assert (latest["session"]["org_id"], latest["session"]["input_tokens"]) == (GLOBEX, 700)
    assert [s["name"] for s in latest["snapshots"]] == ["globex-snapshot"]
    acme = _get(deployment, BOOTSTRAP, f"sessions/{SHARED}", org_id=ACME)
    assert (acme["session"]["org_id"], acme["session"]["spans"]) == (ACME, 2)
    assert {root["span"]["name"] for root in acme["roots"]} == {"acme-call"}

    every_log = _get(deployment, BOOTSTRAP, f"sessions/{SHARED}/logs")["items"]
    assert sorted(log["message"] for log in every_log) == ["acme log line", "globex log line"]
    globex_logs = _get(deployment, BOOTSTRAP, f"sessions/{SHARED}/logs", org_id=GLOBEX)
    assert [log["message"] for log in globex_logs["items"]] == ["globex log line"]
