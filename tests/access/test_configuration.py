"""The configuration: read by super admins only, every secret masked, each read audited; and its
changes between runs, with the retention periods' apart, recorded by the processes that own the
store, once per change however many replicas start with it."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from pydantic import SecretStr
from sqlalchemy import text
from typer.testing import CliRunner

from tests.access.conftest import (
    ACME,
    BOOTSTRAP,
    Deployment,
    cli_environment,
    deployed,
)
from tests.support.runtimes import run_until
from tests.support.stores import batch_of, span
from watchkeeper.access.audit import AuditEntry, AuditLog
from watchkeeper.access.deployment import process_actor, record_settings
from watchkeeper.cli.main import app as cli
from watchkeeper.config import Settings
from watchkeeper.storage.factory import open_store
from watchkeeper.storage.sql_store import SqlStore

SECOND_KEY = "second-key-0123456789abcdef"
INGEST_KEY = "ingest-key-0123456789abcdef"
COLLECTOR_KEY = "collector-key-0123456789"
WEBHOOK = "https://hooks.example/T0-webhook-path"
CHANNEL_SECRET = "channel-signing-secret"
EXPORT_TOKEN = "Bearer export-token-0123456789"
DASHBOARD_PASSWORD = "dashboard-password"
DB_PASSWORD = "database-password"


def with_password(url: str, password: str) -> str:
    """The URL with a password, unless it has one (a server that needs none ignores it)."""
    parts = urlsplit(url)
    if parts.password is not None:
        return url
    where = f"{parts.username}:{password}@{parts.hostname}:{parts.port}"
    return urlunsplit(parts._replace(netloc=where))


@pytest.fixture
def secret_settings(settings: Settings) -> Settings:
    """The access tests' settings, with every kind of secret set."""
    update: dict[str, Any] = {
        "api_keys": [SecretStr(BOOTSTRAP), SecretStr(SECOND_KEY)],
        "ingest_keys": [SecretStr(INGEST_KEY)],
        "collector_key": SecretStr(COLLECTOR_KEY),
        "alert_channels": SecretStr(
            f'{{"ops": {{"kind": "webhook", "url": "{WEBHOOK}", "secret": "{CHANNEL_SECRET}"}}}}'
        ),
        "otlp_export_headers": {"Authorization": SecretStr(EXPORT_TOKEN)},
        "dashboard_url": f"https://admin:{DASHBOARD_PASSWORD}@dashboard.example/",
    }
    if settings.database_url is not None:
        url = with_password(settings.database_url.get_secret_value(), DB_PASSWORD)
        update["database_url"] = SecretStr(url)
    return settings.model_copy(update=update)


@pytest.fixture
def deployment_with_secrets(secret_settings: Settings) -> Iterator[Deployment]:
    with deployed(secret_settings) as served:
        yield served


def secrets_of(settings: Settings) -> list[str]:
    found = [
        BOOTSTRAP,
        SECOND_KEY,
        INGEST_KEY,
        COLLECTOR_KEY,
        WEBHOOK,
        CHANNEL_SECRET,
        EXPORT_TOKEN,
        DASHBOARD_PASSWORD,
    ]
    if settings.database_url is not None:
        found.append(str(urlsplit(settings.database_url.get_secret_value()).password))
    return found


def audit_of(store: SqlStore, action: str) -> list[AuditEntry]:
    """Newest first."""
    now = datetime.now(UTC)
    return AuditLog(lambda: store).entries(
        None, True, now - timedelta(days=1), now + timedelta(days=1), action
    )


def test_super_admins_read_the_configuration_with_every_secret_masked(
    deployment_with_secrets: Deployment,
) -> None:
    deployment = deployment_with_secrets
    with deployment.client(BOOTSTRAP, **{"User-Agent": "configuration-test"}) as client:
        answer = client.get("/api/v1/configuration")
        assert answer.status_code == 200, answer.text
        exported = client.get("/api/v1/audit/export").text
    shown = answer.json()
    for secret in secrets_of(deployment.settings):
        assert secret not in answer.text
        assert secret not in exported
    assert shown["api_keys"] == ["***", "***"]
    assert shown["ingest_keys"] == ["***"]
    assert shown["collector_key"] == "***"
    assert shown["alert_channels"] == "***"
    assert shown["otlp_export_headers"] == {"Authorization": "***"}
    assert shown["dashboard_url"] == "***"
    assert shown["database_url"] == (None if deployment.settings.database_url is None else "***")
    assert shown["redis_url"] is None
    # What is not secret is shown as it is.
    assert shown["database_schema"] == deployment.settings.database_schema
    assert shown["retention_spans"] == 7 * 86_400
    assert shown["max_live_keys"] == 2_000
    [read] = [
        entry
        for entry in audit_of(deployment.store, "sensitive.read")
        if entry.resource == "configuration"
    ]
    assert str(read.key_id).startswith("env:")
    assert (read.role, read.user_agent) == ("super_admin", "configuration-test")


def test_no_other_role_reads_the_configuration(deployment: Deployment) -> None:
    tokens = [
        deployment.make_key("admin", "org_admin", org_id=ACME)[1],
        deployment.make_key("user", "user", org_id=ACME, user_id="ua-1")[1],
        deployment.make_key("viewer", "read_only", org_id=ACME)[1],
        deployment.make_key("ingest", "ingest_only")[1],
    ]
    for token in tokens:
        with deployment.client(token) as client:
            answer = client.get("/api/v1/configuration")
        assert answer.status_code == 403, answer.text
        assert "database_schema" not in answer.text
    with deployment.client() as anonymous:
        assert anonymous.get("/api/v1/configuration").status_code == 401
    assert audit_of(deployment.store, "sensitive.read") == []


def test_unchanged_settings_are_recorded_once_and_a_retention_change_apart(
    settings: Settings,
) -> None:
    store = open_store(settings)
    try:
        audit = AuditLog(lambda: store)
        actor = process_actor(settings)
        record_settings(audit, settings, actor)
        record_settings(audit, settings, actor)
        [configuration] = audit_of(store, "configuration.changed")
        [retention] = audit_of(store, "retention.changed")
        assert configuration.resource == "configuration:app"
        assert configuration.before is None
        assert configuration.after is not None
        recorded = configuration.after["settings"]
        assert recorded["api_keys"] == ["***"]
        assert "instance" not in recorded
        assert "retention_spans" not in recorded
        assert retention.after is not None
        assert retention.after["settings"]["retention_spans"] == 7 * 86_400

        shorter = settings.model_copy(update={"retention_spans": timedelta(days=1)})
        record_settings(audit, shorter, actor)
        assert len(audit_of(store, "configuration.changed")) == 1
        change = audit_of(store, "retention.changed")[0]
        assert change.before is not None
        assert change.after is not None
        assert change.before["changed"] == {"retention_spans": 7 * 86_400}
        assert change.after["changed"] == {"retention_spans": 86_400}
        assert change.before["fingerprint"] == retention.after["fingerprint"]
        assert change.after["fingerprint"] != retention.after["fingerprint"]

        # A secret set where there was none is a change; its value is nowhere.
        with_redis = shorter.model_copy(
            update={"redis_url": SecretStr("redis://:redis-password@cache:6379/0")}
        )
        record_settings(audit, with_redis, actor)
        assert len(audit_of(store, "retention.changed")) == 2
        newest = audit_of(store, "configuration.changed")[0]
        assert newest.before is not None
        assert newest.after is not None
        assert newest.before["changed"] == {"redis_url": None}
        assert newest.after["changed"] == {"redis_url": "***"}
        assert (newest.key_id, newest.client) == ("process", socket.gethostname())
        assert "redis-password" not in str(newest)
    finally:
        store.close()


def test_replicas_starting_together_record_one_entry(settings: Settings) -> None:
    store = open_store(settings)
    try:
        audit = AuditLog(lambda: store)
        actor = process_actor(settings)
        with ThreadPoolExecutor(4) as replicas:
            for started in [
                replicas.submit(record_settings, audit, settings, actor) for _ in range(4)
            ]:
                started.result()
        assert len(audit_of(store, "configuration.changed")) == 1
        assert len(audit_of(store, "retention.changed")) == 1
    finally:
        store.close()


def test_each_start_records_only_what_changed_since_the_last(settings: Settings) -> None:
    store = open_store(settings)
    try:
        recorded = "the start recorded"
        run_until(settings, store, lambda: len(audit_of(store, "retention.changed")) == 1, recorded)
        shorter = settings.model_copy(update={"retention_logs": timedelta(days=2)})
        run_until(shorter, store, lambda: len(audit_of(store, "retention.changed")) == 2, recorded)
        # The second start's configuration but for retention was the first's: no new entry.
        [configuration] = audit_of(store, "configuration.changed")
        assert configuration.key_id == "process"
        change = audit_of(store, "retention.changed")[0]
        assert change.before is not None
        assert change.after is not None
        assert change.before["changed"] == {"retention_logs": 7 * 86_400}
        assert change.after["changed"] == {"retention_logs": 2 * 86_400}
    finally:
        store.close()


def test_a_start_whose_settings_cannot_be_audited_still_starts(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(settings)
    try:
        with store.engine.begin() as connection:
            connection.execute(text("DROP TABLE wk_audit_entries"))
        caplog.set_level(logging.WARNING, "watchkeeper")
        run_until(
            settings,
            store,
            lambda: "could not record its settings in the audit log" in caplog.text,
            "the failure logged",
        )
    finally:
        store.close()


def test_a_retention_run_is_audited(settings: Settings) -> None:
    store = open_store(settings)
    now = time.time()
    store.write(batch_of([span(now - 7200 + index) for index in range(30)]))
    store.write(batch_of([span(now - 60 + index) for index in range(5)]))
    try:
        environment = {**cli_environment(settings), "WATCHKEEPER_RETENTION_SPANS": "3600"}
        result = CliRunner().invoke(cli, ["retention"], env=environment)
        assert result.exit_code == 0, result.output
        [run] = audit_of(store, "retention.applied")
    finally:
        store.close()
    assert run.resource == "retention"
    assert run.key_id == "cli"
    assert str(run.user_agent).startswith("watchkeeper retention")
    assert run.before is None
    assert run.after is not None
    assert run.after["deleted"]["spans"] == 30
    assert run.after["deleted"]["audit entries"] == 0
    assert run.after["periods"]["retention_spans"] == 3600
    assert run.after["periods"]["retention_audit"] == 400 * 86_400
