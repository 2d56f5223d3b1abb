"""The audit log: an entry for every audited action, written before the answer, readable by
super admins (org admins: their organisation's), exported as JSON lines."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from tests.access.conftest import (
    ACME,
    BOOTSTRAP,
    GLOBEX_SESSION,
    Deployment,
    cli_environment,
)
from watchkeeper.access.keys import FAILURES_AUDITED_PER_MINUTE
from watchkeeper.access.sessions import CSRF_HEADER
from watchkeeper.cli.main import app as cli


def entries(deployment: Deployment, action: str, token: str = BOOTSTRAP) -> list[dict[str, object]]:
    with deployment.client(token) as client:
        answer = client.get("/api/v1/audit", params={"action": action})
    assert answer.status_code == 200, answer.text
    found: list[dict[str, object]] = answer.json()
    return found


def test_creating_a_key_is_audited_without_its_token(deployment: Deployment) -> None:
    key_id, token = deployment.make_key("acme-admin", "org_admin", org_id=ACME)
    [entry] = entries(deployment, "key.created")
    assert entry["resource"] == f"key:{key_id}"
    assert entry["org_id"] == ACME
    assert entry["outcome"] == "success"
    assert str(entry["key_id"]).startswith("env:")
    assert entry["after"] == {
        "name": "acme-admin",
        "role": "org_admin",
        "org_id": ACME,
        "user_id": None,
        "rate_limit": None,
        "expires_at": None,
        "revoked_at": None,
    }
    with deployment.client(BOOTSTRAP) as client:
        exported = client.get("/api/v1/audit/export").text
    assert token not in exported
    assert BOOTSTRAP not in exported


def test_revoking_and_rotating_are_audited(deployment: Deployment) -> None:
    key_id, token = deployment.make_key("viewer", "read_only", org_id=ACME)
    with deployment.client(BOOTSTRAP) as client:
        rotated = client.post(f"/api/v1/keys/{key_id}/rotate").json()
        new_id = rotated["key"]["key_id"]
        assert client.delete(f"/api/v1/keys/{new_id}").status_code == 200
    [rotation] = entries(deployment, "key.rotated")
    assert rotation["before"] == {"id": key_id}
    assert rotation["after"]["id"] == new_id  # type: ignore[index]
    [revocation] = entries(deployment, "key.revoked")
    assert revocation["resource"] == f"key:{new_id}"
    assert revocation["before"]["revoked_at"] is None  # type: ignore[index]
    assert revocation["after"]["revoked_at"] is not None  # type: ignore[index]
    with deployment.client(token) as client:
        assert client.get("/api/v1/overview").status_code == 401
    with deployment.client(rotated["token"]) as client:
        assert client.get("/api/v1/overview").status_code == 401


def test_a_key_used_for_the_first_time_is_audited_once(deployment: Deployment) -> None:
    key_id, token = deployment.make_key("viewer", "read_only", org_id=ACME)
    assert entries(deployment, "key.first_used") == []
    with deployment.client(token, **{"User-Agent": "audit-test"}) as client:
        assert client.get("/api/v1/overview").status_code == 200
        assert client.get("/api/v1/routes").status_code == 200
    [entry] = entries(deployment, "key.first_used")
    assert entry["key_id"] == key_id
    assert entry["role"] == "read_only"
    assert entry["user_agent"] == "audit-test"
    assert entry["client"] == "127.0.0.1"


def test_login_and_logout_are_audited_and_logout_ends_the_session(
    deployment: Deployment,
) -> None:
    key_id, token = deployment.make_key("acme-admin", "org_admin", org_id=ACME)
    with deployment.client() as browser:
        logged_in = browser.post("/api/v1/session", json={"key": token})
        assert logged_in.status_code == 200
        cookie = logged_in.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
        assert token not in cookie
        me = logged_in.json()
        assert (me["role"], me["org_id"]) == ("org_admin", ACME)
        assert browser.get("/api/v1/overview").status_code == 200
        # A change made with the cookie needs the CSRF token.
        assert browser.delete("/api/v1/session").status_code == 403
        answer = browser.delete("/api/v1/session", headers={CSRF_HEADER: me["csrf_token"]})
        assert answer.status_code == 204
    with deployment.client() as replay:
        replay.cookies.update(logged_in.cookies)  # the cookie of the session just ended
        assert replay.get("/api/v1/overview").status_code == 401
    [login] = entries(deployment, "session.login")
    [logout] = entries(deployment, "session.logout")
    assert login["key_id"] == logout["key_id"] == key_id
    assert login["resource"] == logout["resource"]


def test_revoking_a_key_ends_its_dashboard_sessions(deployment: Deployment) -> None:
    key_id, token = deployment.make_key("viewer", "read_only", org_id=ACME)
    with deployment.client() as browser:
        assert browser.post("/api/v1/session", json={"key": token}).status_code == 200
        assert browser.get("/api/v1/overview").status_code == 200
        with deployment.client(BOOTSTRAP) as admin:
            assert admin.delete(f"/api/v1/keys/{key_id}").status_code == 200
        assert browser.get("/api/v1/overview").status_code == 401


def test_failed_authentication_is_audited_at_a_bounded_rate(deployment: Deployment) -> None:
    with deployment.client("wk_0123456789abcdef_" + "B" * 43) as client:
        for _ in range(FAILURES_AUDITED_PER_MINUTE + 15):
            assert client.get("/api/v1/overview").status_code == 401
    with deployment.client() as client:
        assert client.post("/api/v1/session", json={"key": "guess"}).status_code == 401
    failures = entries(deployment, "authentication.failed")
    assert len(failures) == FAILURES_AUDITED_PER_MINUTE
    assert {entry["outcome"] for entry in failures} == {"denied"}
    assert failures[-1]["resource"] == "key:0123456789abcdef"


def test_exports_are_audited_and_are_json_lines(deployment: Deployment) -> None:
    deployment.make_key("one", "read_only", org_id=ACME)
    with deployment.client(BOOTSTRAP) as client:
        answer = client.get("/api/v1/audit/export")
    assert answer.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in answer.text.splitlines()]
    # The export's own entry comes after the range it exports, which ends as it starts; the
    # server's start may have recorded its settings before.
    started = {"configuration.changed", "retention.changed"}
    assert [line["action"] for line in lines if line["action"] not in started] == ["key.created"]
    [entry] = entries(deployment, "exported")
    assert entry["resource"] == "audit"


def test_reading_a_session_timeline_and_the_configuration_is_audited(
    deployment: Deployment,
) -> None:
    with deployment.client(BOOTSTRAP) as client:
        assert client.get(f"/api/v1/sessions/{GLOBEX_SESSION}").status_code == 200
        assert client.get("/health/configuration").status_code == 200
        assert client.get("/api/v1/configuration").status_code == 200
    resources = [entry["resource"] for entry in entries(deployment, "sensitive.read")]
    assert resources == ["configuration", "configuration", f"session:{GLOBEX_SESSION}"]


def test_org_admins_read_their_organisation_s_entries_and_users_none(
    deployment: Deployment,
) -> None:
    _, acme_admin = deployment.make_key("acme-admin", "org_admin", org_id=ACME)
    deployment.make_key("globex-viewer", "read_only", org_id="globex")
    _, user = deployment.make_key("acme-user", "user", org_id=ACME, user_id="ua-1")
    seen = entries(deployment, "key.created", acme_admin)
    assert {entry["org_id"] for entry in seen} == {ACME}
    assert len(seen) == 2
    with deployment.client(user) as client:
        assert client.get("/api/v1/audit").status_code == 403
        assert client.get("/api/v1/audit/export").status_code == 403


def test_the_command_line_s_key_changes_are_audited(deployment: Deployment) -> None:
    runner = CliRunner()
    environment = cli_environment(deployment.settings)
    created = runner.invoke(
        cli,
        ["keys", "create", "--name", "ops", "--role", "org_admin", "--org", ACME],
        env=environment,
    )
    assert created.exit_code == 0, created.output
    token = created.output.strip().splitlines()[-1]
    key_id = token.split("_")[1]
    listed = runner.invoke(cli, ["keys", "list"], env=environment)
    assert key_id in listed.output
    assert token not in listed.output
    with deployment.client(token) as client:
        assert client.get("/api/v1/overview").status_code == 200
    rotated = runner.invoke(cli, ["keys", "rotate", key_id], env=environment)
    assert rotated.exit_code == 0, rotated.output
    new_token = rotated.output.strip().splitlines()[-1]
    revoked = runner.invoke(cli, ["keys", "revoke", new_token.split("_")[1]], env=environment)
    assert revoked.exit_code == 0, revoked.output
    with deployment.client(token) as old, deployment.client(new_token) as new:
        assert old.get("/api/v1/overview").status_code == 401
        assert new.get("/api/v1/overview").status_code == 401
    actions = [entry["action"] for entry in entries(deployment, "key.created")]
    assert actions == ["key.created"]
    cli_entries = [
        entry
        for action in ("key.created", "key.rotated", "key.revoked")
        for entry in entries(deployment, action)
    ]
    assert {entry["key_id"] for entry in cli_entries} == {"cli"}
    assert {entry["org_id"] for entry in cli_entries} == {ACME}


def test_rule_and_silence_changes_are_audited(deployment: Deployment) -> None:
    with deployment.client(BOOTSTRAP) as client:
        rules = client.get("/api/v1/alerts/rules").json()["rules"]
        assert rules, "the default rules are listed"
        name = rules[0]["name"]
        assert client.post(f"/api/v1/alerts/rules/{name}/disable").status_code == 200
        silence = client.post(
            "/api/v1/alerts/silences",
            json={"matchers": [{"name": "alertname", "value": name}], "duration_seconds": 60},
        )
        assert silence.status_code == 201, silence.text
        ended = client.delete(f"/api/v1/alerts/silences/{silence.json()['id']}")
        assert ended.status_code == 204
    [rule_change] = entries(deployment, "rule.changed")
    assert rule_change["resource"] == name
    silences = entries(deployment, "silence.changed")
    assert len(silences) == 2
    assert {entry["resource"] for entry in silences} == {str(silence.json()["id"])}
