"""The export's settings: read from the environment, checked at start-up with messages naming the
variable, header values kept secret; and the values OpenTelemetry attributes can carry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from watchkeeper.config import ConfigurationError, load_settings
from watchkeeper.otlp.as_otel import attribute_value
from watchkeeper.recording.default import set_recorder
from watchkeeper.redaction import redact_settings
from watchkeeper.runtime.runtime import Runtime

SECRET = "Bearer header-secret-0123456789"


@pytest.fixture(autouse=True)
def _no_process_recorder() -> Iterator[None]:
    yield
    set_recorder(None)


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("http://localhost:4318", "http://localhost:4318/v1/traces"),
        ("http://localhost:6006/", "http://localhost:6006/v1/traces"),
        ("https://collector.example/v1/traces", "https://collector.example/v1/traces"),
        (
            " https://cloud.langfuse.com/api/public/otel ",
            "https://cloud.langfuse.com/api/public/otel/v1/traces",
        ),
    ],
)
def test_the_endpoint_is_a_base_url_or_the_traces_url(
    monkeypatch: pytest.MonkeyPatch, given: str, used: str
) -> None:
    monkeypatch.setenv("WATCHKEEPER_OTLP_EXPORT_ENDPOINT", given)
    assert load_settings().otlp_export_endpoint == used


@pytest.mark.parametrize(
    "text",
    [
        '{"Authorization": "Bearer header-secret-0123456789", "X-Tenant": "garden"}',
        "Authorization=Bearer%20header-secret-0123456789, X-Tenant=garden",
    ],
)
def test_headers_are_json_or_otel_pairs_and_never_shown(
    monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.setenv("WATCHKEEPER_OTLP_EXPORT_HEADERS", text)
    settings = load_settings()
    headers = settings.otlp_export_headers
    assert {name: value.get_secret_value() for name, value in headers.items()} == {
        "Authorization": SECRET,
        "X-Tenant": "garden",
    }
    shown = redact_settings(settings)["otlp_export_headers"]
    assert shown == {"Authorization": "***", "X-Tenant": "***"}
    assert "header-secret" not in repr(settings)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("WATCHKEEPER_OTLP_EXPORT_ENDPOINT", "localhost:4318", "http:// or https:// URL"),
        ("WATCHKEEPER_OTLP_EXPORT_ENDPOINT", "grpc://collector:4317", "http:// or https:// URL"),
        ("WATCHKEEPER_OTLP_EXPORT_ENDPOINT", "http://collector:port/", "Port"),
        ("WATCHKEEPER_OTLP_EXPORT_HEADERS", "header-secret-0123456789", "name=value pairs"),
        ("WATCHKEEPER_OTLP_EXPORT_HEADERS", "bad name=header-secret", "not an HTTP header name"),
        ("WATCHKEEPER_OTLP_EXPORT_HEADERS", '{"A": "header-secret\\r\\nX: 1"}', "line break"),
        ("WATCHKEEPER_OTLP_EXPORT_TIMEOUT", "0", "greater than 0"),
    ],
)
def test_a_bad_export_setting_stops_start_up_naming_it_and_hiding_secrets(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    text = str(raised.value)
    assert f"{variable}: " in text
    assert message in text
    assert "header-secret" not in text


def test_the_runtime_exports_only_when_an_endpoint_is_set(tmp_path: Path) -> None:
    plain = Runtime(load_settings(sqlite_path=tmp_path / "plain.db"))
    assert plain.exporter is None
    exporting = Runtime(
        load_settings(sqlite_path=tmp_path / "exporting.db", otlp_export_endpoint="http://h:4318")
    )
    assert exporting.exporter is not None
    assert exporting.exporter in exporting.recorder.observers
    assert exporting.exporter.destination == "h"


def test_an_endpoint_without_the_extra_stops_start_up_with_the_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("watchkeeper.otlp._installed", lambda module: False)
    settings = load_settings(sqlite_path=tmp_path / "x.db", otlp_export_endpoint="http://h:4318")
    with pytest.raises(ConfigurationError, match=r"WATCHKEEPER_OTLP_EXPORT_ENDPOINT: .*\[otlp\]"):
        Runtime(settings)


@pytest.mark.parametrize(
    ("value", "carried"),
    [
        ("text", "text"),
        (True, True),
        (3, 3),
        (0.5, 0.5),
        (["a", "b"], ["a", "b"]),
        ([1, 2], [1, 2]),
        ([], []),
        ([1, "a"], '[1,"a"]'),
        ({"beds": 3}, '{"beds":3}'),
        ({1: "one"}, '{"1":"one"}'),
        (2**70, str(2**70)),
        ([2**70], f"[{2**70}]"),
        ("caf\udce9", "caf\ufffd"),
        (["\udce9"], ["\ufffd"]),
        (None, None),
    ],
)
def test_attribute_values_become_what_opentelemetry_carries(value: object, carried: object) -> None:
    assert attribute_value(value) == carried
