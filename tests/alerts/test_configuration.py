"""The rules file, the channels setting and the default rules, checked at start-up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from watchkeeper.alerts.configuration import load_configuration
from watchkeeper.alerts.defaults import default_rules
from watchkeeper.alerts.doubles import RecordingChannel
from watchkeeper.alerts.model import RuleSource
from watchkeeper.config import ConfigurationError, Settings

YAML_RULES = """
default_rules: true
disabled_rules: [SlowResponses]
channels:
  ops: {kind: recording}
rules:
  - name: RelevanceLow
    signal: {kind: validation_failure_rate, validator: minimum_score, target: pinecone}
    thresholds: {warning: 0.1}
    channels: {warning: [[ops]]}
"""


def test_a_yaml_rules_file_adds_rules_and_channels_beside_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text(YAML_RULES, encoding="utf-8")
    configuration = load_configuration(Settings(alert_rules_file=path))
    seeds = {rule.name: (source, enabled) for rule, source, enabled in configuration.seeds}
    assert seeds["RelevanceLow"] == (RuleSource.FILE, True)
    assert seeds["SlowResponses"] == (RuleSource.DEFAULT, False)
    assert seeds["IntegrationDown"] == (RuleSource.DEFAULT, True)
    assert isinstance(configuration.channels["ops"], RecordingChannel)


@pytest.mark.parametrize(
    ("text", "suffix", "message"),
    [
        ("rules: [{name: x}]", ".yaml", "rules.0.signal: Field required"),
        ("{not json", ".json", "not valid JSON"),
        ("rules = []", ".toml", "expected a .yaml, .yml or .json file"),
        (
            json.dumps(
                {
                    "rules": [
                        {
                            "name": "A",
                            "signal": {"kind": "memory"},
                            "thresholds": {"warning": 1},
                            "channels": {"warning": [["pager"]]},
                        }
                    ]
                }
            ),
            ".json",
            "rule 'A' notifies unknown channels: pager",
        ),
        (
            json.dumps(
                {
                    "rules": [
                        {
                            "name": "MemoryHigh",
                            "signal": {"kind": "memory"},
                            "thresholds": {"warning": 1},
                        }
                    ]
                }
            ),
            ".json",
            "rules named twice: MemoryHigh",
        ),
    ],
)
def test_a_wrong_rules_file_fails_start_up_naming_the_setting(
    tmp_path: Path, text: str, suffix: str, message: str
) -> None:
    path = tmp_path / f"alerts{suffix}"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigurationError) as caught:
        load_configuration(Settings(alert_rules_file=path))
    assert "WATCHKEEPER_ALERT_RULES_FILE" in str(caught.value)
    assert message in str(caught.value)


def test_a_wrong_channel_names_it_without_showing_its_secrets() -> None:
    channels = json.dumps({"hook": {"kind": "webhook", "url": "not a url", "secret": "s3cr3t"}})
    with pytest.raises(ConfigurationError) as caught:
        load_configuration(Settings(alert_channels=channels))
    assert "WATCHKEEPER_ALERT_CHANNELS" in str(caught.value)
    assert "'hook'" in str(caught.value)
    assert "s3cr3t" not in str(caught.value)
    assert "not a url" not in str(caught.value)


def test_default_rules_notify_the_default_channels_and_escalate_to_the_next() -> None:
    settings = Settings(
        alert_default_channels=["ops"],
        alert_escalation_channels=["oncall"],
        ai_daily_budget=50.0,
    )
    rules = {rule.name: rule for rule in default_rules(settings)}
    assert "CostOverBudgetDay" in rules
    assert "CostOverBudgetMonth" not in rules
    down = rules["IntegrationDown"]
    assert down.channels.critical == [["ops"], ["oncall"]]
    assert down.escalate_after_seconds == 1800
    assert "CostOverBudgetDay" not in {rule.name for rule in default_rules(Settings())}
