"""Every route of the OpenAPI document by every kind of caller, generated from the document
itself, so routes added later are covered without a line here.

Each answer's status is checked against the permission the route declares
(``x-watchkeeper-permission``, or the guard's default), and no answer to a caller of one
organisation (or user) may hold anything of another's rows; the audit log is unchanged by all of
it but for new entries.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
from sqlalchemy import select

from tests.access.conftest import (
    ACME_MARKERS,
    GLOBEX_MARKERS,
    GLOBEX_SESSION,
    GLOBEX_TRACE,
    Deployment,
    keys_of_every_kind,
)
from watchkeeper.access.guard import PERMISSION_EXTENSION, route_permission
from watchkeeper.access.roles import GRANTS, Role
from watchkeeper.storage.schema import audit_entries

METHODS = ("get", "post", "put", "patch", "delete")
PUBLIC = "x-watchkeeper-public"
DONE = {200, 201, 204, 400, 404, 409, 422}
"""Answers of a caller who may call the route: done, or refused for its input, never for who
they are."""
ROLE_OF = {
    "super": Role.SUPER_ADMIN,
    "acme-admin": Role.ORG_ADMIN,
    "acme-user": Role.USER,
    "acme-viewer": Role.READ_ONLY,
    "ingest": Role.INGEST_ONLY,
    "globex-admin": Role.ORG_ADMIN,
    "globex-user": Role.USER,
}
# What each caller must never see: another organisation's rows, or another user's.
FORBIDDEN_TEXT = {
    "acme-admin": GLOBEX_MARKERS,
    "acme-user": (*GLOBEX_MARKERS, "ua-2"),
    "acme-viewer": GLOBEX_MARKERS,
    "globex-admin": ACME_MARKERS,
    "globex-user": ACME_MARKERS,
}
INVALID = ("no key", "wrong key", "expired", "revoked")
# Values whose choice, not the caller, would decide the answer: a key to log in with that is
# none, and a role every key manager may grant.
BODY_VALUES = {"key": "not-a-key", "role": "read_only"}


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        target: Any = document
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        schema = target
    for combined in ("anyOf", "oneOf", "allOf"):
        if combined in schema:
            options = [option for option in schema[combined] if option.get("type") != "null"]
            return _resolve(document, options[0])
    return schema


def sample(document: dict[str, Any], schema: dict[str, Any], name: str = "") -> Any:
    """A small valid-looking value for a schema (required properties only)."""
    schema = _resolve(document, schema)
    if name in BODY_VALUES:
        return BODY_VALUES[name]
    if "enum" in schema:
        return schema["enum"][0]
    match schema.get("type"):
        case "integer":
            return max(1, int(schema.get("minimum", 1)))
        case "number":
            return float(schema.get("minimum", 1))
        case "boolean":
            return True
        case "array":
            return []
        case "object":
            return {
                key: sample(document, value, key)
                for key, value in schema.get("properties", {}).items()
                if key in schema.get("required", [])
            }
    return BODY_VALUES.get(name) or "x" * max(1, int(schema.get("minLength", 1)))


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method]


def request_for(
    document: dict[str, Any], path: str, operation: dict[str, Any], victim: str
) -> tuple[str, dict[str, Any], Any]:
    """The URL, query and body of a call aimed at the other organisation's resources."""
    known = {
        "trace_id": f"{GLOBEX_TRACE + 2:032x}",
        "session_id": GLOBEX_SESSION,
        "name": "credits_used",
        "key_id": victim,
    }
    query: dict[str, Any] = {}
    for parameter in operation.get("parameters", []):
        value = known.get(parameter["name"]) or sample(document, parameter.get("schema", {}))
        if parameter["in"] == "path":
            path = path.replace("{" + parameter["name"] + "}", str(value))
        elif parameter["in"] == "query" and parameter.get("required"):
            query[parameter["name"]] = value
    body = None
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        body = sample(document, content["application/json"]["schema"])
    return path, query, body


def guarded(path: str, operation: dict[str, Any]) -> bool:
    if operation.get(PUBLIC):
        return False
    return path.startswith("/api/v1/") or "401" in operation.get("responses", {})


def audit_rows(deployment: Deployment) -> dict[int, tuple[Any, ...]]:
    with deployment.store.engine.connect() as connection:
        return {row.id: tuple(row) for row in connection.execute(select(audit_entries))}


def test_every_route_for_every_caller(deployment: Deployment) -> None:
    keys_of_every_kind(deployment)
    victim, _ = deployment.make_key("victim", "read_only", org_id="globex")
    document = httpx.get(deployment.url + "/openapi.json", timeout=60).json()
    found = list(operations(document))
    assert {("post", "/api/v1/keys"), ("get", "/api/v1/audit/export")} <= {
        (method, path) for method, path, _ in found
    }
    before = audit_rows(deployment)
    callers: dict[str, str | None] = {
        "no key": None,
        "wrong key": "wk_0123456789abcdef_" + "A" * 43,
        **{name: deployment.tokens[name] for name in ("expired", "revoked", *ROLE_OF)},
    }
    problems: list[str] = []
    for method, template, operation in found:
        path, query, body = request_for(document, template, operation, victim)
        permission = route_permission(
            method,
            {PERMISSION_EXTENSION: operation[PERMISSION_EXTENSION]}
            if PERMISSION_EXTENSION in operation
            else None,
        )
        for caller, token in callers.items():
            with deployment.client(token) as client:
                answer = client.request(method.upper(), path, params=query, json=body)
            where = f"{method.upper()} {template} as {caller}: {answer.status_code}"
            if answer.status_code >= 500:
                problems.append(f"{where} {answer.text[:200]}")
                continue
            if not guarded(template, operation):
                continue
            if caller in INVALID:
                if answer.status_code != 401:
                    problems.append(f"{where}, expected 401")
                continue
            allowed = permission in GRANTS[ROLE_OF[caller]]
            if not allowed and answer.status_code not in (401, 403):
                problems.append(f"{where}, expected 403 ({permission.value})")
            elif allowed and answer.status_code not in DONE:
                problems.append(f"{where}, expected it done ({answer.text[:200]})")
            for marker in FORBIDDEN_TEXT.get(caller, ()):
                if re.search(re.escape(marker), answer.text):
                    problems.append(f"{where} shows {marker!r} of another scope")
    assert problems == [], "\n".join(problems)
    after = audit_rows(deployment)
    assert {entry: after.get(entry) for entry in before} == before  # none changed or deleted
    assert len(after) > len(before)
