"""``watchkeeper alerts`` on a real SQLite store, and test-channel through a real webhook."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.alerts.channels.receivers import HttpReceiver
from tests.alerts.support import drops, evaluator, recording
from watchkeeper.access.audit import AuditLog
from watchkeeper.alerts.rules import Rule
from watchkeeper.alerts.sql import AlertStore
from watchkeeper.cli.main import app
from watchkeeper.config import load_settings
from watchkeeper.storage.factory import open_store
from watchkeeper.storage.sql_store import SqlStore

RULE = {
    "name": "Dropping",
    "signal": {"kind": "recorder_drops"},
    "thresholds": {"warning": 0},
    "channels": {"warning": [["ops"]]},
}


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cli.db"
    monkeypatch.setenv("WATCHKEEPER_SQLITE_PATH", str(path))
    return path


def firing_alert(path: Path) -> int:
    store = open_store(load_settings(sqlite_path=path))
    assert isinstance(store, SqlStore)
    try:
        ev = evaluator(store, [Rule.model_validate(RULE)], [recording("ops")])
        drops(store, time.time(), 4)
        assert ev.tick().held
        (alert,) = AlertStore(store.engine).open_alerts()
    finally:
        store.close()
    assert alert.id is not None
    return alert.id


def audited(path: Path) -> list[tuple[str, str | None, dict[str, object] | None]]:
    """The audit log's (action, resource, after), oldest first."""
    store = open_store(load_settings(sqlite_path=path))
    try:
        moments = (datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC) + timedelta(hours=1))
        entries = list(AuditLog(lambda: store).all_entries(None, True, *moments))
    finally:
        store.close()
    assert all(entry.key_id == "cli" for entry in entries)
    return [(entry.action, entry.resource, entry.after) for entry in reversed(entries)]


def test_list_ack_and_silence(database: Path) -> None:
    runner = CliRunner()
    assert "No firing or pending alerts." in runner.invoke(app, ["alerts", "list"]).output
    alert_id = firing_alert(database)
    listed = runner.invoke(app, ["alerts", "list"])
    assert "firing" in listed.output
    assert "Dropping" in listed.output
    acked = runner.invoke(app, ["alerts", "ack", str(alert_id), "--by", "ana", "--note", "x"])
    assert acked.exit_code == 0, acked.output
    assert "acked by ana" in runner.invoke(app, ["alerts", "list"]).output
    assert runner.invoke(app, ["alerts", "ack", "999", "--by", "ana"]).exit_code == 2
    silenced = runner.invoke(app, ["alerts", "silence", "alertname=Dropping", "--minutes", "5"])
    assert silenced.exit_code == 0, silenced.output
    assert "Silence 1 until" in silenced.output
    bad = runner.invoke(app, ["alerts", "silence", "job=~("])
    assert bad.exit_code != 0
    (acknowledged, silence) = audited(database)
    assert acknowledged == ("alert.acknowledged", str(alert_id), {"by": "ana", "note": "x"})
    assert silence[:2] == ("silence.changed", "1")
    assert silence[2] is not None
    assert silence[2]["matchers"] == ["alertname=Dropping"]


def test_rules_from_a_file_turned_off_and_deleted(database: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    path = tmp_path / "rule.json"
    path.write_text(json.dumps({**RULE, "thresholds": {}}), encoding="utf-8")
    refused = runner.invoke(app, ["alerts", "set-rule", str(path)])
    assert refused.exit_code == 2
    assert "set a warning or a critical threshold" in refused.output
    path.write_text(json.dumps(RULE), encoding="utf-8")
    assert runner.invoke(app, ["alerts", "set-rule", str(path)]).exit_code == 0
    assert "on  Dropping" in runner.invoke(app, ["alerts", "rules"]).output
    assert runner.invoke(app, ["alerts", "disable", "Dropping"]).exit_code == 0
    assert "off Dropping" in runner.invoke(app, ["alerts", "rules"]).output
    assert runner.invoke(app, ["alerts", "delete-rule", "Dropping"]).exit_code == 0
    assert runner.invoke(app, ["alerts", "delete-rule", "Dropping"]).exit_code == 2
    stored, turned_off, deleted = audited(database)  # the refused file changed nothing
    assert stored[:2] == ("rule.changed", "Dropping")
    assert stored[2] is not None
    assert stored[2]["name"] == "Dropping"
    assert turned_off == ("rule.changed", "Dropping", {"enabled": False})
    assert deleted == ("rule.changed", "Dropping", {"deleted": True})


def test_test_channel_sends_through_a_real_webhook(
    database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = HttpReceiver().start()
    try:
        channels = {"hook": {"kind": "webhook", "url": f"{receiver.url}/hook"}}
        monkeypatch.setenv("WATCHKEEPER_ALERT_CHANNELS", json.dumps(channels))
        result = CliRunner().invoke(app, ["alerts", "test-channel", "hook"])
        assert result.exit_code == 0, result.output
        assert "hook: delivered" in result.output
        (received,) = receiver.received
        assert json.loads(received.body)["alerts"][0]["rule"] == "WatchkeeperTest"
        missing = CliRunner().invoke(app, ["alerts", "test-channel", "nope"])
        assert missing.exit_code == 2
    finally:
        receiver.stop()
