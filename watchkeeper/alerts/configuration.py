"""Alerting's configuration at start-up: the rules file, the channels, the default rules.

Everything wrong fails start-up with :class:`ConfigurationError` naming the setting (and, in the
rules file, the rule or channel).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from watchkeeper.alerts.channels import build_channel
from watchkeeper.alerts.defaults import default_rules
from watchkeeper.alerts.doubles import RECORDING_KIND, RecordingChannel
from watchkeeper.alerts.model import RuleSource
from watchkeeper.alerts.notification import Channel, ChannelConfigError, ChannelSpec
from watchkeeper.alerts.rules import Rule, RuleError, RulesFile
from watchkeeper.config import ConfigurationError, Settings, read_yaml

RULES_FILE = "WATCHKEEPER_ALERT_RULES_FILE"
CHANNELS = "WATCHKEEPER_ALERT_CHANNELS"


@dataclass(frozen=True)
class AlertsConfiguration:
    seeds: list[tuple[Rule, RuleSource, bool]]
    """Rules from the defaults and the file, with whether each is on."""
    channels: dict[str, Channel]


def load_configuration(settings: Settings) -> AlertsConfiguration:
    document = _rules_file(settings.alert_rules_file)
    specs = {
        name: ChannelSpec(name, entry.kind, _options(entry.model_dump()))
        for name, entry in document.channels.items()
    }
    specs.update(_channels_setting(settings))
    channels = {name: _build(spec) for name, spec in specs.items()}
    seeds: list[tuple[Rule, RuleSource, bool]] = []
    if settings.alert_default_rules and document.default_rules:
        off = set(document.disabled_rules)
        seeds.extend(
            (rule, RuleSource.DEFAULT, rule.name not in off) for rule in default_rules(settings)
        )
    seeds.extend((rule, RuleSource.FILE, True) for rule in document.rules)
    for rule, _, _ in seeds:
        try:
            rule.checked()
        except RuleError as error:
            raise ConfigurationError(f"{RULES_FILE}: {error}") from None
    names = [rule.name for rule, _, _ in seeds]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ConfigurationError(f"{RULES_FILE}: rules named twice: {', '.join(twice)}")
    for rule, _, _ in seeds:
        unknown = sorted(rule.channels.names() - set(channels))
        if unknown:
            raise ConfigurationError(
                f"{RULES_FILE} / {CHANNELS}: rule {rule.name!r} notifies unknown channels: "
                f"{', '.join(unknown)} (configured: {', '.join(sorted(channels)) or 'none'})"
            )
    return AlertsConfiguration(seeds, channels)


def _options(entry: dict[str, Any]) -> dict[str, object]:
    return {key: value for key, value in entry.items() if key != "kind"}


def _rules_file(path: Path | None) -> RulesFile:
    if path is None:
        return RulesFile()
    where = f"{RULES_FILE} ({path})"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigurationError(f"{where}: cannot be read ({error.strerror})") from None
    document: object
    if path.suffix.lower() == ".json":
        try:
            document = json.loads(text)
        except ValueError as error:
            raise ConfigurationError(f"{where}: not valid JSON ({error})") from None
    elif path.suffix.lower() in (".yaml", ".yml"):
        document = read_yaml(text, where)
    else:
        raise ConfigurationError(f"{where}: expected a .yaml, .yml or .json file")
    try:
        return RulesFile.model_validate(document)
    except ValidationError as error:
        raise ConfigurationError(f"{where}: {explain(error)}") from None


def _channels_setting(settings: Settings) -> dict[str, ChannelSpec]:
    if settings.alert_channels is None:
        return {}
    try:
        document = json.loads(settings.alert_channels.get_secret_value())
    except ValueError:
        raise ConfigurationError(f"{CHANNELS}: expected a JSON object") from None
    if not isinstance(document, dict):
        raise ConfigurationError(f"{CHANNELS}: expected a JSON object of name -> channel")
    specs = {}
    for name, entry in document.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("kind"), str):
            raise ConfigurationError(f"{CHANNELS}: channel {name!r} needs a kind")
        specs[name] = ChannelSpec(name, entry["kind"], _options(entry))
    return specs


def _build(spec: ChannelSpec) -> Channel:
    if spec.kind == RECORDING_KIND:
        return RecordingChannel(spec.name)
    try:
        return build_channel(spec)
    except ChannelConfigError as error:
        raise ConfigurationError(f"{CHANNELS} / {RULES_FILE}: {error}") from None


def explain(error: ValidationError) -> str:
    """A validation error as one line per problem, without echoing the values given."""
    return "; ".join(
        f"{'.'.join(str(part) for part in problem['loc']) or 'value'}: {problem['msg']}"
        for problem in error.errors(include_url=False, include_input=False)
    )
