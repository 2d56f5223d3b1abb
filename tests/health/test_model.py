"""The pieces without a server: statuses, thresholds, redaction, drop tracking."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, SecretStr

from watchkeeper.config import ConfigurationError, load_settings
from watchkeeper.health import HealthStatus, HealthThresholds, ThresholdBook, redact_settings
from watchkeeper.health.circuits import CircuitState
from watchkeeper.health.readiness import DropWatch
from watchkeeper.health.traffic import judge_traffic
from watchkeeper.recording.windows import WindowStats
from watchkeeper.redaction import scrub_urls


def test_worst_status_wins_and_nothing_is_a_pass() -> None:
    assert HealthStatus.worst([HealthStatus.PASS, HealthStatus.FAIL, HealthStatus.WARN]) is (
        HealthStatus.FAIL
    )
    assert HealthStatus.worst([HealthStatus.PASS, HealthStatus.WARN]) is HealthStatus.WARN
    assert HealthStatus.worst([]) is HealthStatus.PASS
    assert [status.http_status for status in HealthStatus] == [200, 200, 503]


def test_contradictory_thresholds_name_the_setting() -> None:
    with pytest.raises(ValueError, match="warn <= fail"):
        HealthThresholds(warn_error_rate=0.5, fail_error_rate=0.1)
    with pytest.raises(ConfigurationError, match="WATCHKEEPER_HEALTH_"):
        ThresholdBook.from_settings(load_settings(health_warn_p95_seconds=20.0))
    with pytest.raises(ConfigurationError, match="INTEGRATION_THRESHOLDS\\['openai'\\]"):
        ThresholdBook.from_settings(
            load_settings(integration_thresholds={"openai": {"fail_error_rate": 0.01}})
        )


def test_circuit_states_map_to_health() -> None:
    stats = WindowStats("integration", "openai", 300, 10, 0, 0.1, 0.2, 0.3)
    services = judge_traffic(
        [stats],
        frozenset({"integration"}),
        ThresholdBook(),
        {"openai": CircuitState.OPEN, "anthropic": CircuitState.HALF_OPEN},
    )
    assert services["openai"].checks["openai:circuit"][0].status is HealthStatus.FAIL
    assert services["openai"].status is HealthStatus.FAIL
    assert services["anthropic"].status is HealthStatus.WARN


def test_every_kind_of_secret_is_redacted() -> None:
    settings = load_settings(
        api_keys=["key-aaaaaaaaaaaa", "key-bbbbbbbbbbbb"],
        database_url="postgresql://u:pw-123@db/wk",
    )
    shown = redact_settings(settings)
    assert shown["api_keys"] == ["***", "***"]
    assert shown["database_url"] == "***"
    assert shown["max_live_keys"] == settings.max_live_keys
    text = str(shown)
    assert "key-aaaaaaaaaaaa" not in text
    assert "pw-123" not in text


def test_nested_names_and_urls_are_redacted() -> None:
    class Extra(BaseModel):
        auth_token: str = "tok-1"
        broker: str = "amqp://guest:guest-pass@mq:5672/"
        plain_url: str = "https://api.example.com/v1"
        secret: SecretStr = SecretStr("s")
        headers: dict[str, str] = {"X-Api-Key": "hdr-key", "Accept": "json"}

    shown = redact_settings(Extra())
    assert shown == {
        "auth_token": "***",
        "broker": "***",
        "plain_url": "https://api.example.com/v1",
        "secret": "***",
        "headers": {"X-Api-Key": "***", "Accept": "json"},
    }
    assert scrub_urls("failed: postgresql://a:b@h/db") == "failed: postgresql://a:***@h/db"


def test_drops_count_as_recent_for_a_minute() -> None:
    watch = DropWatch()
    assert not watch.dropped_recently(0, now=100.0)
    assert watch.dropped_recently(3, now=110.0)
    assert watch.dropped_recently(3, now=169.0)
    assert not watch.dropped_recently(3, now=171.0)
    assert watch.dropped_recently(4, now=172.0)
