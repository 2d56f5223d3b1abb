"""Settings read from the environment the way the README's configuration table describes."""

from __future__ import annotations

import logging
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import get_origin

import pytest
from pydantic import SecretStr

from watchkeeper.config import (
    ENV_PREFIX,
    NOT_SETTINGS,
    ConfigurationError,
    Settings,
    examples,
    load_settings,
    variable,
)


@pytest.mark.parametrize(
    ("given", "period"),
    [
        ("3600", timedelta(hours=1)),
        ("90.5", timedelta(seconds=90.5)),
        ("PT1H", timedelta(hours=1)),
        ("P7D", timedelta(days=7)),
    ],
)
def test_retention_periods_read_seconds_or_iso_8601(
    monkeypatch: pytest.MonkeyPatch, given: str, period: timedelta
) -> None:
    monkeypatch.setenv("WATCHKEEPER_RETENTION_SPANS", given)
    assert load_settings().retention_spans == period


@pytest.mark.parametrize("given", ["0", "-P1D", "soon"])
def test_a_retention_period_that_is_not_a_positive_duration_is_refused(
    monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    monkeypatch.setenv("WATCHKEEPER_RETENTION_LOGS", given)
    with pytest.raises(ConfigurationError, match="WATCHKEEPER_RETENTION_LOGS"):
        load_settings()


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No Watchkeeper setting from the shell running the tests leaks into these."""
    for name in os.environ:
        if name.upper().startswith(ENV_PREFIX) and name.upper() not in NOT_SETTINGS:
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.parametrize(
    ("url", "file"),
    [
        ("sqlite:///data/wk.db", Path("data/wk.db")),
        ("sqlite:////var/lib/wk.db", Path("/var/lib/wk.db")),
    ],
)
def test_a_sqlite_url_names_the_store_file(
    clean_environment: pytest.MonkeyPatch, url: str, file: Path
) -> None:
    clean_environment.setenv("WATCHKEEPER_DATABASE_URL", url)
    assert load_settings().sqlite_file == file


@pytest.mark.parametrize(
    "url", ["postgresql://u@h/db", "postgres://u@h/db", "postgresql+psycopg://u@h/db"]
)
def test_a_postgresql_url_puts_the_store_in_postgresql(
    clean_environment: pytest.MonkeyPatch, url: str
) -> None:
    clean_environment.setenv("WATCHKEEPER_DATABASE_URL", url)
    settings = load_settings()
    assert settings.sqlite_file is None
    assert settings.database_url is not None
    assert settings.database_url.get_secret_value() == url


def test_the_host_apps_database_url_is_not_read(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("DATABASE_URL", "postgresql://app:pw@app-db:5432/app")
    settings = load_settings()
    assert settings.database_url is None
    assert settings.sqlite_file == Path("watchkeeper.db")


def test_tables_go_in_their_own_postgresql_schema_by_default(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    assert load_settings().database_schema == "watchkeeper"
    clean_environment.setenv("WATCHKEEPER_DATABASE_SCHEMA", "monitoring")
    assert load_settings().database_schema == "monitoring"


@pytest.mark.parametrize(
    ("variable", "value", "expected", "example"),
    [
        (
            "WATCHKEEPER_DATABASE_URL",
            "mysql://root:pw@db/x",
            "expected sqlite:///relative/path.db, sqlite:////absolute/path.db or postgresql://",
            "WATCHKEEPER_DATABASE_URL=sqlite:///data/watchkeeper.db",
        ),
        (
            "WATCHKEEPER_DATABASE_URL",
            "sqlite:///:memory:",
            "in-memory SQLite database",
            "WATCHKEEPER_DATABASE_URL=postgresql://user@db:5432/app",
        ),
        (
            "WATCHKEEPER_DATABASE_SCHEMA",
            "Monitoring",
            "schema name in lower case",
            "WATCHKEEPER_DATABASE_SCHEMA=watchkeeper",
        ),
        (
            "WATCHKEEPER_DATABASE_SCHEMA",
            "pg_watch",
            "not starting with a digit or pg_",
            "WATCHKEEPER_DATABASE_SCHEMA=watchkeeper",
        ),
        (
            "WATCHKEEPER_BUFFER_SIZE",
            "lots",
            "valid integer",
            "WATCHKEEPER_BUFFER_SIZE=100000",
        ),
        ("WATCHKEEPER_ENABLED", "maybe", "valid boolean", "WATCHKEEPER_ENABLED=true"),
        (
            "WATCHKEEPER_RETENTION_SPANS",
            "0",
            "positive period",
            "WATCHKEEPER_RETENTION_SPANS=604800",
        ),
        (
            "WATCHKEEPER_REDACT_PATTERNS",
            '["unclosed',
            "expected a JSON list or comma-separated values",
            'WATCHKEEPER_REDACT_PATTERNS=["ACME-\\\\d{6}"]',
        ),
        (
            "WATCHKEEPER_REDACT_PATTERNS",
            "(unbalanced",
            "not a valid regular expression",
            "WATCHKEEPER_REDACT_PATTERNS=",
        ),
        (
            "WATCHKEEPER_INTEGRATION_HOSTS",
            "llm.internal=llm",
            "expected a JSON object",
            'WATCHKEEPER_INTEGRATION_HOSTS={"llm.internal": "llm"}',
        ),
        (
            "WATCHKEEPER_INTEGRATION_THRESHOLDS",
            '{"openai": {"warn_error_rate": 3}}',
            "(openai.warn_error_rate): Input should be less than or equal to 1",
            "WATCHKEEPER_INTEGRATION_THRESHOLDS={",
        ),
        (
            "WATCHKEEPER_TRACE_HEADER",
            "",
            "at least 1 character",
            "WATCHKEEPER_TRACE_HEADER=X-Trace-ID",
        ),
        (
            "WATCHKEEPER_BATCH_SIZE",
            "200000",
            "must not exceed WATCHKEEPER_BUFFER_SIZE",
            "WATCHKEEPER_BATCH_SIZE=5000",
        ),
    ],
)
def test_a_bad_value_names_its_variable_and_shows_one_that_works(
    clean_environment: pytest.MonkeyPatch, variable: str, value: str, expected: str, example: str
) -> None:
    clean_environment.setenv(variable, value)
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    message = str(raised.value)
    assert f"\n  {variable}" in message
    assert expected in message
    assert f"for example {example}" in message or f" or {example}" in message
    assert "WATCHKEEPER_WATCHKEEPER_" not in message


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_every_settings_example_is_accepted(
    clean_environment: pytest.MonkeyPatch, name: str
) -> None:
    for example in examples(name):
        clean_environment.setenv(variable(name), example)
        load_settings()


def test_a_secret_is_never_shown_in_an_error(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("WATCHKEEPER_DATABASE_URL", "mysql://root:hunter2@db/x")
    clean_environment.setenv("WATCHKEEPER_API_KEYS", '["key-hunter3"')
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    assert "hunter2" not in str(raised.value)
    assert "hunter3" not in str(raised.value)
    assert str(raised.value).count("(given (secret))") == 2


_ADDRESS_LISTS = {"collector_listen"}
"""Lists whose items must be addresses: read like the others, tested with addresses below."""
_LIST_SETTINGS = [
    name
    for name, field in Settings.model_fields.items()
    if get_origin(field.annotation) is list and name not in _ADDRESS_LISTS
]


def test_collector_addresses_are_listed_like_other_lists_and_checked(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    clean_environment.setenv(
        "WATCHKEEPER_COLLECTOR_LISTEN", "unix:/run/wk.sock, tcp://0.0.0.0:4319"
    )
    assert load_settings().collector_listen == ["unix:/run/wk.sock", "tcp://0.0.0.0:4319"]
    clean_environment.setenv("WATCHKEEPER_COLLECTOR_LISTEN", "http://example.com")
    with pytest.raises(ConfigurationError, match="WATCHKEEPER_COLLECTOR_LISTEN: expected unix:"):
        load_settings()
    clean_environment.delenv("WATCHKEEPER_COLLECTOR_LISTEN")
    clean_environment.setenv("WATCHKEEPER_COLLECTOR", "tcp://collector")
    with pytest.raises(ConfigurationError, match="WATCHKEEPER_COLLECTOR: expected"):
        load_settings()


def test_the_list_settings_are_the_expected_ones() -> None:
    assert set(_LIST_SETTINGS) >= {
        "api_keys",
        "redact_fields",
        "redact_patterns",
        "required_integrations",
        "exclude_paths",
    }


def _values(settings: Settings, name: str) -> list[str]:
    return [
        item.get_secret_value() if isinstance(item, SecretStr) else str(item)
        for item in getattr(settings, name)
    ]


@pytest.mark.parametrize("name", _LIST_SETTINGS)
@pytest.mark.parametrize(
    ("given", "read"),
    [
        ("alpha,beta", ["alpha", "beta"]),
        (" alpha , beta ,", ["alpha", "beta"]),
        ('["alpha", "beta"]', ["alpha", "beta"]),
        ("alpha", ["alpha"]),
        ("", []),
        ("[]", []),
    ],
)
def test_a_list_is_json_or_comma_separated_and_empty_text_is_empty(
    clean_environment: pytest.MonkeyPatch, name: str, given: str, read: list[str]
) -> None:
    clean_environment.setenv(variable(name), given)
    assert _values(load_settings(), name) == read


def test_empty_text_records_every_path(clean_environment: pytest.MonkeyPatch) -> None:
    assert load_settings().exclude_paths  # a default worth switching off
    clean_environment.setenv("WATCHKEEPER_EXCLUDE_PATHS", "")
    assert load_settings().exclude_paths == []


def test_a_pattern_with_a_comma_is_written_as_json(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("WATCHKEEPER_REDACT_PATTERNS", '["\\\\d{3,4}"]')
    assert load_settings().redact_patterns == ["\\d{3,4}"]


def test_an_object_setting_reads_json_and_empty_text_is_empty(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    clean_environment.setenv("WATCHKEEPER_INTEGRATION_HOSTS", '{"llm.internal": "llm"}')
    assert load_settings().integration_hosts == {"llm.internal": "llm"}
    clean_environment.setenv("WATCHKEEPER_INTEGRATION_HOSTS", "")
    assert load_settings().integration_hosts == {}


def test_a_misspelt_variable_is_logged_with_the_nearest_setting(
    clean_environment: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    misspelt = ENV_PREFIX + "BUFER_SIZE"
    clean_environment.setenv(misspelt, "500")
    with caplog.at_level(logging.WARNING, logger="watchkeeper"):
        load_settings()
    assert [record.getMessage() for record in caplog.records] == [
        f"{misspelt} is not a Watchkeeper setting and is ignored; "
        "did you mean WATCHKEEPER_BUFFER_SIZE?"
    ]


def test_variables_that_are_settings_or_allowed_are_not_logged(
    clean_environment: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clean_environment.setenv("WATCHKEEPER_SERVICE", "shop")
    clean_environment.setenv("WATCHKEEPER_METRICS_MULTIPROCESS_DIR", "/tmp/wk-metrics")
    for name in NOT_SETTINGS:
        clean_environment.setenv(name, "postgresql://somewhere/else")
    with caplog.at_level(logging.WARNING, logger="watchkeeper"):
        load_settings()
    assert caplog.records == []


def test_every_watchkeeper_variable_the_project_uses_is_a_setting_or_allowed() -> None:
    root = Path(__file__).resolve().parents[1]
    places = [root / "README.md", *(root / folder for folder in _SOURCE_FOLDERS)]
    files = [place for place in places if place.is_file()] + [
        file
        for place in places
        if place.is_dir()
        for file in place.rglob("*")
        if file.suffix in {".py", ".md", ".sh", ".toml", ".yml", ".yaml", ""} and file.is_file()
    ]
    used = {
        name
        for file in files
        if file != Path(__file__).resolve()
        for name in re.findall(r"\bWATCHKEEPER_[A-Z0-9_]*[A-Z0-9]\b", file.read_text("utf-8"))
    }
    known = {variable(name) for name in Settings.model_fields} | NOT_SETTINGS
    assert used - known == set()


_SOURCE_FOLDERS = ("watchkeeper", "tests", "examples", "bench", "scripts", "docs", ".ci")


def test_an_unknown_setting_in_code_suggests_the_nearest() -> None:
    with pytest.raises(ConfigurationError, match=r"bufer_size: unknown setting .*buffer_size"):
        load_settings(bufer_size=500)
