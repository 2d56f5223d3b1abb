"""Watchkeeper's settings: one object, from code and ``WATCHKEEPER_*`` environment variables.

A bad value fails at start-up with :class:`ConfigurationError`, whose message names the
environment variable, says what was expected and shows a value that would do, so an operator can
fix it without reading code. A ``WATCHKEEPER_*`` variable that is no setting (a typo) is logged
with the nearest real one, because pydantic would otherwise ignore it without a word.

The host app's own ``DATABASE_URL`` is deliberately not read: Watchkeeper's tables go only where
``WATCHKEEPER_DATABASE_URL`` says.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import json
import logging
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, get_args, get_origin
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "WATCHKEEPER_"

NOT_SETTINGS = frozenset({"WATCHKEEPER_TEST_POSTGRES_URL", "WATCHKEEPER_TEST_REDIS_URL"})
"""``WATCHKEEPER_*`` variables that are legitimately set but are not settings, so never reported
as typos: the servers Watchkeeper's own test suite runs against."""

logger = logging.getLogger("watchkeeper")

_SQLITE_URL = re.compile(r"sqlite:///(?P<path>[^?#]+)")
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
_POSTGRES_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://")
# Lower case only: PostgreSQL folds unquoted names, so "Watchkeeper" would not name one schema
# the same way in search_path and in CREATE SCHEMA; "pg_" names are reserved by PostgreSQL.
_SCHEMA_NAME = re.compile(r"(?!pg_)[a-z_][a-z0-9_]{0,62}")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
"""An HTTP header name: RFC 9110's token."""
OTLP_TRACES_PATH = "/v1/traces"

# Request recording's defaults, shared with the code-level options (instrumentation.options,
# instrumentation.identity) so the two ways of configuring start from the same values.
DEFAULT_EXCLUDED_PATHS = ("/health", "/livez", "/readyz", "/metrics", "/watchkeeper", "/static")
DEFAULT_TRACE_HEADER = "X-Trace-ID"
DEFAULT_USER_HEADER = "X-User-ID"
DEFAULT_ORG_HEADER = "X-Org-ID"
DEFAULT_SESSION_HEADER = "X-Session-ID"


class ConfigurationError(ValueError):
    """A setting is missing or has a value Watchkeeper cannot use."""


def read_yaml(text: str, where: str) -> object:
    """A YAML file a setting names (resilience policies, alert rules), read safely; PyYAML is an
    optional extra, so its absence is a start-up error naming the setting."""
    try:
        yaml = importlib.import_module("yaml")
    except ImportError:
        raise ConfigurationError(
            f"{where}: reading YAML needs PyYAML: pip install 'watchkeeper[yaml]'"
        ) from None
    try:
        document: object = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise ConfigurationError(f"{where}: not valid YAML ({error})") from None
    return document


@dataclass(frozen=True, slots=True)
class Address:
    """Where a collector takes events: a Unix socket, or a TCP port (with TLS for ``tls``)."""

    scheme: Literal["unix", "tcp", "tls"]
    path: Path | None = None
    host: str = ""
    port: int = 0

    def __str__(self) -> str:
        return (
            f"unix:{self.path}"
            if self.scheme == "unix"
            else f"{self.scheme}://{self.host}:{self.port}"
        )


def parse_address(text: str) -> Address:
    """``unix:PATH``, ``tcp://HOST:PORT`` or ``tls://HOST:PORT``, or a ValueError saying so."""
    if text.startswith("unix:"):
        path = text.removeprefix("unix:").removeprefix("//")
        if not path:
            raise ValueError("a unix: address needs a socket path, as in unix:/run/wk.sock")
        return Address("unix", path=Path(path))
    parts = urlsplit(text)
    if parts.scheme in ("tcp", "tls") and parts.hostname:
        try:
            port = parts.port
        except ValueError:
            port = None
        if port is not None and not parts.path.strip("/"):
            return Address(parts.scheme, host=parts.hostname, port=port)  # type: ignore[arg-type]
    raise ValueError(
        f"expected unix:/path/to.sock, tcp://host:port or tls://host:port, got {text!r}"
    )


def settings_document(settings: Settings) -> dict[str, Any]:
    """The settings as plain JSON values, secrets included: for handing them to a process
    Watchkeeper starts (over a pipe, never on its command line or in a log)."""
    return {name: _plain(value) for name, value in settings.model_dump().items()}


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _default_instance() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class ThresholdOverride(BaseModel):
    """Health thresholds for one integration; unset fields keep the global value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    warn_error_rate: float | None = Field(None, ge=0, le=1)
    fail_error_rate: float | None = Field(None, ge=0, le=1)
    warn_p95_seconds: float | None = Field(None, gt=0)
    fail_p95_seconds: float | None = Field(None, gt=0)
    min_requests: int | None = Field(None, ge=1)


class ModelPrice(BaseModel):
    """A model's price in US dollars per million tokens, overriding or extending genai-prices."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_per_million: float = Field(ge=0)
    output_per_million: float = Field(ge=0)


RETENTION_FIELDS = (
    "retention_spans",
    "retention_logs",
    "retention_metrics",
    "retention_minute_rollups",
    "retention_hour_rollups",
    "retention_audit",
)
"""The retention periods: validated alike, and audited apart from the other settings."""


class Settings(BaseSettings):
    """Everything Watchkeeper can be told. Every field is also a ``WATCHKEEPER_<NAME>`` variable."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        validate_default=True,
        populate_by_name=True,
        # Lists and objects arrive as raw text and are read by _from_text, so a list can be
        # written "a,b" as well as JSON, and a bad value names its variable.
        enable_decoding=False,
    )

    enabled: bool = Field(True, description="Record anything at all; off makes every API a no-op.")
    database_url: SecretStr | None = Field(
        None,
        examples=["sqlite:///data/watchkeeper.db", "postgresql://user@db:5432/app"],
        description="Where to store: sqlite:///relative/path.db, sqlite:////absolute/path.db "
        "or postgresql://… (shared by app replicas); unset means WATCHKEEPER_SQLITE_PATH. The "
        "app's own DATABASE_URL is not read.",
    )
    sqlite_path: Path = Field(
        Path("watchkeeper.db"),
        description="SQLite file used when WATCHKEEPER_DATABASE_URL is unset.",
    )
    database_schema: str = Field(
        "watchkeeper",
        description="PostgreSQL schema holding Watchkeeper's tables, created if missing, so "
        "they stay out of the app's own schema and migrations.",
    )
    service: str = Field("app", min_length=1, description="Name of the monitored service.")
    instance: str = Field(
        default_factory=_default_instance,
        min_length=1,
        examples=["web-1"],
        description="This process's name.",
    )
    buffer_size: int = Field(
        100_000, ge=100, description="Events held in memory before new ones are dropped."
    )
    batch_size: int = Field(5_000, ge=1, description="Most events written in one transaction.")
    flush_interval: float = Field(
        1.0, gt=0, le=60, description="Seconds between flushes when the buffer is not full."
    )
    shutdown_timeout: float = Field(
        10.0, gt=0, description="Seconds allowed to flush what is buffered at shutdown."
    )
    spool_dir: Path | None = Field(
        None,
        examples=["/var/lib/app/watchkeeper-spool"],
        description="Directory keeping batches the store cannot take yet (an outage, a "
        "restart during one), written once it is back; may be shared by worker processes. "
        "Unset: beside the SQLite file (its name plus .spool), or for PostgreSQL in the "
        "user's cache directory, named after the database and schema.",
    )
    spool_max_bytes: int = Field(
        256 * 1024 * 1024,
        ge=0,
        description="Most bytes the spool may hold; beyond that its oldest files are dropped "
        "and counted. 0 turns the spool off (batches then wait in memory only).",
    )
    loss_log_interval: float = Field(
        60.0,
        gt=0,
        description="Seconds between log lines about dropped events, per reason (each line "
        "counts the drops since the last).",
    )
    max_live_keys: int = Field(
        2_000, ge=10, description="Distinct (kind, name) pairs kept in live aggregates."
    )
    retention_spans: timedelta = Field(
        timedelta(days=7), description="How long raw spans are kept (seconds or ISO 8601)."
    )
    retention_logs: timedelta = Field(timedelta(days=7), description="How long logs are kept.")
    retention_metrics: timedelta = Field(
        timedelta(days=7), description="How long metric points are kept."
    )
    retention_minute_rollups: timedelta = Field(
        timedelta(days=3), description="How long per-minute rollups are kept."
    )
    retention_hour_rollups: timedelta = Field(
        timedelta(days=400), description="How long per-hour rollups are kept."
    )
    retention_audit: timedelta = Field(
        timedelta(days=400), description="How long audit log entries are kept."
    )
    retention_interval: float = Field(
        3600.0,
        ge=0,
        description="Seconds between two retention runs in a process that writes the store "
        "(the first one interval after it starts; replicas take turns); 0: none, run "
        "`watchkeeper retention` from cron instead.",
    )
    store_timeout: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="Seconds any one call to a PostgreSQL store may take (connecting, a "
        "statement, a socket gone silent) before it fails and is retried.",
    )
    migrate_on_start: bool = Field(
        True, description="Bring the store's schema up to date when Watchkeeper starts."
    )
    redact: bool = Field(
        True, description="Redact personal data (e-mail, phone, cards, keys) before storing."
    )
    redact_fields: list[str] = Field(
        default_factory=list,
        examples=["password,token"],
        description="Extra field names whose values are always redacted (a,b or a JSON list).",
    )
    redact_patterns: list[str] = Field(
        default_factory=list,
        examples=['["ACME-\\\\d{6}"]'],
        description="Extra regular expressions to redact (a,b or a JSON list, needed when "
        "one has a comma).",
    )
    api_keys: list[SecretStr] = Field(
        default_factory=list,
        examples=["key-one,key-two"],
        description="Keys that open the API, dashboard and protected endpoints "
        "(a,b or a JSON list).",
    )
    open_access: bool = Field(
        False, description="Serve the API and dashboard without a key (local development only)."
    )
    protect_metrics: bool = Field(True, description="Require a key for /metrics.")
    key_rate_limits: dict[str, int] = Field(
        default_factory=dict,
        examples=['{"user": 120, "ingest_only": 20000}'],
        description="Requests per minute a key may make, by role (super_admin, org_admin, "
        "user, read_only, ingest_only), overriding the defaults (600, 600, 300, 300, 6000); a "
        "key's own limit overrides its role's. Shared by replicas through WATCHKEEPER_REDIS_URL.",
    )
    dashboard_session_seconds: int = Field(
        12 * 3600,
        ge=60,
        le=30 * 24 * 3600,
        description="How long a dashboard login lasts before the key must be entered again.",
    )
    ingest_keys: list[SecretStr] = Field(
        default_factory=list,
        examples=["ingest-key-one,ingest-key-two"],
        description="Keys that may only send traces, logs and metrics to the OTLP endpoints "
        "(/v1/traces, /v1/logs, /v1/metrics), never read anything (a,b or a JSON list); the API "
        "keys may send too.",
    )
    otlp_ingest: bool = Field(
        True,
        description="Accept OpenTelemetry traces, logs and metrics over OTLP/HTTP at "
        "/v1/traces, /v1/logs and /v1/metrics (with a key from WATCHKEEPER_API_KEYS or "
        "WATCHKEEPER_INGEST_KEYS; needs the otlp extra).",
    )
    otlp_max_body_bytes: int = Field(
        16 * 1024 * 1024,
        ge=1024,
        description="Largest OTLP request body accepted, in bytes, before and after gzip "
        "decompression; larger ones are refused with 413.",
    )
    otlp_export_endpoint: str | None = Field(
        None,
        examples=["http://localhost:4318/v1/traces"],
        description="Also send every recorded span to this OTLP/HTTP endpoint (Jaeger, Tempo, "
        "Phoenix, Langfuse, a collector); /v1/traces is added unless the URL ends with it. "
        "Unset: nothing is exported. Needs the otlp extra.",
    )
    otlp_export_headers: dict[str, SecretStr] = Field(
        default_factory=dict,
        examples=['{"Authorization": "Bearer <token>"}', "Authorization=Bearer%20<token>"],
        description="Headers sent with every export (a JSON object, or name=value pairs "
        "separated by commas as in OTEL_EXPORTER_OTLP_HEADERS); their values are secrets, "
        "never logged or shown.",
    )
    otlp_export_timeout: float = Field(
        10.0,
        gt=0,
        le=300,
        description="Seconds one export to WATCHKEEPER_OTLP_EXPORT_ENDPOINT may take, retries "
        "included, before its spans are counted as lost.",
    )
    metrics_multiprocess_dir: Path | None = Field(
        None,
        examples=["/tmp/watchkeeper-metrics"],
        validation_alias=AliasChoices(
            "WATCHKEEPER_METRICS_MULTIPROCESS_DIR",
            "PROMETHEUS_MULTIPROC_DIR",
            "metrics_multiprocess_dir",
        ),
        description="Directory shared by worker processes so /metrics shows all of them; "
        "set it before the workers start and empty it before each server start.",
    )
    metrics_max_label_values: int = Field(
        500, ge=1, description="Distinct values kept per label of a metric; more become 'other'."
    )
    protect_configuration: bool = Field(
        True, description="Require a key for /health/configuration."
    )
    health_warn_error_rate: float = Field(
        0.05, ge=0, le=1, description="Integration error rate (0-1) at which health warns."
    )
    health_fail_error_rate: float = Field(
        0.25, ge=0, le=1, description="Integration error rate (0-1) at which health fails."
    )
    health_warn_p95_seconds: float = Field(
        2.0, gt=0, description="Integration p95 latency (seconds) at which health warns."
    )
    health_fail_p95_seconds: float = Field(
        10.0, gt=0, description="Integration p95 latency (seconds) at which health fails."
    )
    health_min_requests: int = Field(
        5, ge=1, description="Calls in the last 5 minutes needed before health judges a name."
    )
    integration_thresholds: dict[str, ThresholdOverride] = Field(
        default_factory=dict,
        examples=['{"openai": {"warn_p95_seconds": 5}}'],
        description="Per-integration health thresholds (JSON object: name -> any of "
        "warn_error_rate, fail_error_rate, warn_p95_seconds, fail_p95_seconds, min_requests).",
    )
    readiness_includes_monitoring: bool = Field(
        False,
        description="Let Watchkeeper's own trouble (its store unreachable, its recorder "
        "dropping events) fail /health/ready; by default it only warns.",
    )
    required_integrations: list[str] = Field(
        default_factory=list,
        examples=["openai,pinecone"],
        description="Integrations that must be healthy for /health/ready to pass "
        "(a,b or a JSON list).",
    )
    health_request_checks: bool = Field(
        False, description="Also judge each request route's error rate and p95 in /health."
    )
    system_sample_interval: float = Field(
        5.0, gt=0, description="Seconds between samples of CPU, memory, disk and network."
    )
    exclude_paths: list[str] = Field(
        default_factory=lambda: list(DEFAULT_EXCLUDED_PATHS),
        description="Path prefixes whose requests are not recorded (a,b or a JSON list; "
        "empty records every path).",
    )
    trace_header: str = Field(
        DEFAULT_TRACE_HEADER,
        min_length=1,
        description="Response header carrying the request's trace id.",
    )
    user_header: str = Field(
        DEFAULT_USER_HEADER, min_length=1, description="Request header naming the user."
    )
    org_header: str = Field(
        DEFAULT_ORG_HEADER, min_length=1, description="Request header naming the organisation."
    )
    session_header: str = Field(
        DEFAULT_SESSION_HEADER, min_length=1, description="Request header naming the session."
    )
    integration_hosts: dict[str, str] = Field(
        default_factory=dict,
        examples=['{"llm.internal": "llm"}'],
        description="Extra host -> integration name mappings for outbound calls (JSON object; "
        "'*.example.com' matches subdomains), added to the built-in AI providers.",
    )
    model_prices: dict[str, ModelPrice] = Field(
        default_factory=dict,
        examples=['{"my-model": {"input_per_million": 1, "output_per_million": 2}}'],
        description="Model prices overriding genai-prices (JSON object: model -> "
        "{input_per_million, output_per_million} in US dollars).",
    )
    redis_url: SecretStr | None = Field(
        None,
        examples=["redis://cache:6379/0"],
        description="Redis shared by the app's replicas for resilience's circuit breakers, rate "
        "limits and cached answers (redis://, rediss:// or unix://; needs the redis extra). "
        "Unset: each process keeps its own.",
    )
    redis_timeout: float = Field(
        0.1,
        gt=0,
        le=10,
        description="Seconds a Redis call of resilience may take before the process uses its "
        "own state instead (and checks Redis in the background until it answers).",
    )
    resilience_file: Path | None = Field(
        None,
        examples=["resilience.toml"],
        description="TOML or YAML file of per-integration resilience policies (a table per "
        "integration, and 'defaults').",
    )
    resilience_policies: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        examples=['{"openai": {"timeout": 60, "retry": {"attempts": 4}}}'],
        description="Resilience policies as JSON, merged over WATCHKEEPER_RESILIENCE_FILE "
        "table by table (integration -> fields it changes).",
    )
    raise_internal_errors: bool = Field(
        False, description="Re-raise Watchkeeper's own errors (for its test suite), not just log."
    )
    collector: str = Field(
        "auto",
        examples=["auto", "off", "unix:/run/watchkeeper/collector.sock", "tcp://collector:4319"],
        description="Where an instrumented app ships its events: auto starts (or joins) one "
        "local collector process per host and app; off aggregates and writes in the app's own "
        "process; unix:PATH, tcp://HOST:PORT or tls://HOST:PORT name a running collector.",
    )
    collector_key: SecretStr | None = Field(
        None,
        description="Ingest key an app presents to a collector across a network (one of the "
        "collector's WATCHKEEPER_INGEST_KEYS or WATCHKEEPER_API_KEYS).",
    )
    collector_listen: list[str] = Field(
        default_factory=list,
        examples=["unix:/run/watchkeeper/collector.sock,tcp://0.0.0.0:4319"],
        description="Addresses `watchkeeper collector` and `watchkeeper serve` take apps' events "
        "on (unix:PATH, tcp://HOST:PORT); TCP senders must present a key.",
    )
    collector_directory: Path | None = Field(
        None,
        description="Where the local collector keeps its sockets and lock (default: a private "
        "folder in the system's temporary directory).",
    )
    gc_freeze: bool = Field(
        True,
        description="Move the objects alive once the app has started out of the garbage "
        "collector's reach (gc.freeze), so collections stop walking the start-up heap.",
    )
    # Logs: capture of the app's own logging records, and files followed by `tail`.
    log_capture: bool = Field(
        True,
        description="Record the app's standard library logging (and structlog) records, with "
        "the trace, span, user, organisation and session current when each was written.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "AUDIT", "ERROR", "SECURITY", "CRITICAL"] = (
        Field(
            "INFO",
            description="Lowest level of the app's log records that are recorded (AUDIT and "
            "SECURITY records are recorded whatever it is).",
        )
    )
    log_buffer_share: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Fraction of WATCHKEEPER_BUFFER_SIZE that log records may fill: a log "
        "storm drops logs (counted), while spans keep the rest.",
    )
    tail_paths: list[Path] = Field(
        default_factory=list,
        examples=["/var/log/app/app.log,/var/log/app/access.log"],
        description="Log files `watchkeeper serve` follows into the store, as `watchkeeper "
        "tail` does (a,b or a JSON list).",
    )
    tail_pattern: str | None = Field(
        None,
        examples=[r"^(?P<time>\S+ \S+) \[(?P<level>\w+)\] (?P<message>.*)$"],
        description="Regular expression for lines of files followed by tail, tried before "
        "the built-in formats; its named groups time, level, logger and message fill the "
        "record's fields, others become attributes.",
    )
    tail_state_dir: Path | None = Field(
        None,
        description="Directory where tail keeps how far it has read each file, to resume "
        "there after a restart. Unset: beside the SQLite file (its name plus .tail), or for "
        "PostgreSQL in the user's cache directory.",
    )

    alerts: bool = Field(
        True,
        description="Evaluate alert rules in the process that writes the store (the collector, "
        "`watchkeeper serve`, or the app with WATCHKEEPER_COLLECTOR=off); one evaluator runs "
        "at a time across them all.",
    )
    alert_rules_file: Path | None = Field(
        None,
        examples=["alerts.yaml"],
        description="YAML or JSON file of alert rules and channels, loaded at start-up "
        "(rules, channels, default_rules, disabled_rules).",
    )
    alert_channels: SecretStr | None = Field(
        None,
        examples=['{"ops": {"kind": "webhook", "url": "https://hooks.example/a", "secret": "s"}}'],
        description="Notification channels as a JSON object (name -> kind and options), "
        "added to the rules file's; a secret as a whole, since it holds tokens and passwords.",
    )
    alert_default_rules: bool = Field(
        True, description="Evaluate the built-in rules (each can also be turned off by name)."
    )
    alert_default_channels: list[str] = Field(
        default_factory=list,
        examples=["ops-slack"],
        description="Channels the built-in rules notify first (a,b or a JSON list).",
    )
    alert_escalation_channels: list[str] = Field(
        default_factory=list,
        examples=["oncall-email"],
        description="Channels the built-in critical rules notify when an alert stays "
        "unacknowledged for WATCHKEEPER_ALERT_ESCALATE_AFTER.",
    )
    alert_escalate_after: float = Field(
        1800.0, ge=60, description="Seconds before the built-in rules escalate (see above)."
    )
    alert_interval: float = Field(
        15.0, ge=1, le=3600, description="Seconds between two evaluations of the rules."
    )
    alert_lease_seconds: float = Field(
        60.0,
        ge=3,
        le=3600,
        description="How long the evaluator's lease lasts unrenewed: another process takes "
        "over within this time when its holder dies.",
    )
    alert_send_timeout: float = Field(
        30.0, gt=0, le=600, description="Seconds a channel gets to deliver one notification."
    )
    dashboard_url: str | None = Field(
        None,
        examples=["https://watchkeeper.example.com/"],
        description="The dashboard's public address, linked from notifications.",
    )
    ai_daily_budget: float | None = Field(
        None,
        gt=0,
        examples=["50"],
        description="AI spend per UTC day (US dollars) the budget alert holds to.",
    )
    ai_monthly_budget: float | None = Field(
        None,
        gt=0,
        examples=["1000"],
        description="AI spend per UTC month (US dollars) the budget alert holds to.",
    )

    @field_validator("*", mode="before")
    @classmethod
    def _from_text(cls, value: object, info: ValidationInfo) -> object:
        # Decoding is switched off (enable_decoding), so this reads every variable's text: a
        # list from JSON or "a,b", an object from JSON, and empty text as "nothing" (an empty
        # list, an empty object, or unset for an optional setting).
        if not isinstance(value, str) or info.field_name is None:
            return value
        field = cls.model_fields[info.field_name]
        shape = get_origin(field.annotation)
        text = value.strip()
        if shape is list:
            return _list_from_text(text)
        if shape is dict:
            return _object_from_text(text)
        if not text and field.default is None:
            return None
        return value

    @field_validator("database_url")
    @classmethod
    def _store_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        url = value.get_secret_value().strip()
        if url.startswith(_POSTGRES_SCHEMES):
            return SecretStr(url)
        match = _SQLITE_URL.fullmatch(url)
        if match is not None and match["path"] != ":memory:":
            return SecretStr(url)
        if match is not None:
            raise ValueError(
                "an in-memory SQLite database would be lost between connections; name a file"
            )
        scheme = url.split("://", 1)[0] if "://" in url else url[:12]
        raise ValueError(
            "expected sqlite:///relative/path.db, sqlite:////absolute/path.db or "
            f"postgresql://user@host:5432/db, got one starting with {scheme!r}"
        )

    @field_validator("collector")
    @classmethod
    def _collector_address(cls, value: str) -> str:
        if value in ("auto", "off"):
            return value
        parse_address(value)
        return value

    @field_validator("collector_listen")
    @classmethod
    def _listen_addresses(cls, values: list[str]) -> list[str]:
        for value in values:
            parse_address(value)
        return values

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(_REDIS_SCHEMES):
            raise ValueError("expected redis://host:6379/0, rediss://… or unix:///path.sock")
        return value

    @field_validator("database_schema")
    @classmethod
    def _schema_name(cls, value: str) -> str:
        if not _SCHEMA_NAME.fullmatch(value):
            raise ValueError(
                "expected a PostgreSQL schema name in lower case: letters, digits and _, "
                "at most 63, not starting with a digit or pg_"
            )
        return value

    @field_validator(*RETENTION_FIELDS, mode="before")
    @classmethod
    def _seconds_from_text(cls, value: object) -> object:
        # Environment variables arrive as text, and pydantic reads "3600" as neither seconds
        # nor ISO 8601; the descriptions promise both.
        if isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value.strip()):
            return float(value)
        return value

    @field_validator(*RETENTION_FIELDS)
    @classmethod
    def _positive_period(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be a positive period, in seconds (604800) or ISO 8601 (P7D)")
        return value

    @field_validator("redact_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(
                    f"{pattern!r} is not a valid regular expression: {error}"
                ) from None
        return patterns

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_name(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("tail_pattern")
    @classmethod
    def _tail_pattern(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            compiled = re.compile(value)
        except re.error as error:
            raise ValueError(f"not a valid regular expression: {error}") from None
        if "message" not in compiled.groupindex:
            raise ValueError("the expression needs a named group (?P<message>...)")
        return value

    @field_validator("otlp_export_endpoint")
    @classmethod
    def _export_endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018 - a port that is no number raises here, with its own message
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http:// or https:// URL with a host")
        path = parts.path.rstrip("/")
        if not path.endswith(OTLP_TRACES_PATH):
            path += OTLP_TRACES_PATH
        return urlunsplit(parts._replace(path=path))

    @field_validator("otlp_export_headers", mode="before")
    @classmethod
    def _headers_from_pairs(cls, value: object) -> object:
        # OTEL_EXPORTER_OTLP_HEADERS's own format, so a value can be copied from an SDK's setup.
        if isinstance(value, str) and not value.lstrip().startswith("{"):
            return _pairs_from_text(value)
        return value

    @field_validator("otlp_export_headers")
    @classmethod
    def _header_names(cls, headers: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, value in headers.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not an HTTP header name")
            if any(character in value.get_secret_value() for character in "\r\n\0"):
                raise ValueError(f"the value of {name} holds a line break or NUL")
        return headers

    @model_validator(mode="after")
    def _batch_fits_buffer(self) -> Settings:
        if self.batch_size > self.buffer_size:
            raise ValueError(f"must not exceed WATCHKEEPER_BUFFER_SIZE ({self.buffer_size})")
        return self

    @property
    def spool_directory(self) -> Path | None:
        """Where batches wait on disk for the store, or ``None`` when the spool is off."""
        if self.spool_max_bytes == 0:
            return None
        if self.spool_dir is not None:
            return self.spool_dir.expanduser()
        sqlite_file = self.sqlite_file
        if sqlite_file is not None:
            return sqlite_file.with_name(f"{sqlite_file.name}.spool")
        return self._cache_directory("spool")

    @property
    def tail_state_directory(self) -> Path:
        """Where tail keeps its offsets: as the spool, a place of this store's own."""
        if self.tail_state_dir is not None:
            return self.tail_state_dir.expanduser()
        sqlite_file = self.sqlite_file
        if sqlite_file is not None:
            return sqlite_file.with_name(f"{sqlite_file.name}.tail")
        return self._cache_directory("tail")

    def _cache_directory(self, purpose: str) -> Path:
        # Named after the store, never its password: a spool must only replay into the
        # database it was meant for, and two apps on one host must not share one.
        where = urlsplit(self.database_url.get_secret_value() if self.database_url else "")
        store = f"{where.hostname}:{where.port}{where.path}/{self.database_schema}"
        digest = hashlib.sha256(store.encode()).hexdigest()[:16]
        cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        return Path(cache) / "watchkeeper" / purpose / f"{self.database_schema}-{digest}"

    @property
    def sqlite_file(self) -> Path | None:
        """The SQLite file the store lives in, or ``None`` when it is in PostgreSQL."""
        if self.database_url is None:
            return self.sqlite_path.expanduser()
        match = _SQLITE_URL.fullmatch(self.database_url.get_secret_value())
        return None if match is None else Path(match["path"]).expanduser()


def _list_from_text(text: str) -> object:
    if not text:
        return []
    if not text.startswith("["):
        return [item.strip() for item in text.split(",") if item.strip()]
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"expected a JSON list or comma-separated values; the JSON is broken ({error.msg} "
            f"at character {error.pos})"
        ) from None


def _pairs_from_text(text: str) -> dict[str, str]:
    """``name=value,name=value``, values percent-decoded, as OpenTelemetry reads headers."""
    pairs: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        name, equals, value = item.partition("=")
        if not equals or not name.strip():
            # Never the text itself: it holds secrets.
            raise ValueError("expected a JSON object or name=value pairs separated by commas")
        pairs[unquote(name.strip())] = unquote(value.strip())
    return pairs


def _object_from_text(text: str) -> object:
    if not text:
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"expected a JSON object; the JSON is broken ({error.msg} at character {error.pos})"
        ) from None


def variable(name: str) -> str:
    """The environment variable that sets the field ``name``."""
    return f"{ENV_PREFIX}{name.upper()}"


def _as_text(value: object) -> str:
    """``value`` written the way an environment variable would give it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
        return str(int(seconds)) if seconds.is_integer() else str(seconds)
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value)
    return str(value)


def examples(name: str) -> list[str]:
    """Values that ``name``'s variable accepts: the field's examples, else its default."""
    field = Settings.model_fields[name]
    if field.examples:
        return [str(example) for example in field.examples]
    return [_as_text(field.get_default(call_default_factory=True))]


def _field_of(location: tuple[int | str, ...]) -> tuple[str, str]:
    """The field an error is about and the variable to name, whichever alias supplied it."""
    if not location:
        return "batch_size", variable("batch_size")  # the one check across fields
    given = str(location[0])
    if given in Settings.model_fields:
        return given, variable(given)
    for name, field in Settings.model_fields.items():
        if any(choice.upper() == given.upper() for choice in _aliases(field.validation_alias)):
            return name, given.upper()
    return given, given


def _aliases(alias: object) -> list[str]:
    """The names a field's ``validation_alias`` accepts (none when it has no alias)."""
    if isinstance(alias, AliasChoices):
        return [choice for choice in alias.choices if isinstance(choice, str)]
    return [alias] if isinstance(alias, str) else []


def _is_secret(name: str) -> bool:
    annotation = Settings.model_fields[name].annotation
    return SecretStr in (annotation, *get_args(annotation))


def _describe(error: Mapping[str, Any]) -> str:
    name, env_name = _field_of(tuple(error["loc"]))
    given = error.get("input")
    if not error["loc"]:
        given = given.get(name) if isinstance(given, Mapping) else getattr(given, name, None)
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        nearest = difflib.get_close_matches(name, list(Settings.model_fields), n=1)
        hint = f"did you mean {nearest[0]}?" if nearest else "see the configuration table in README"
        return f"{name}: unknown setting (given {given!r}); {hint}"
    shown = "(secret)" if _is_secret(name) else repr(given)
    inside = ".".join(str(part) for part in error["loc"][1:])  # an entry of a list or object
    where = f"{env_name} ({inside})" if inside else env_name
    valid = " or ".join(f"{env_name}={example}" for example in examples(name))
    return f"{where}: {message} (given {shown}); for example {valid}"


def _known_variables() -> frozenset[str]:
    names = {variable(name) for name in Settings.model_fields}
    for field in Settings.model_fields.values():
        names.update(
            choice.upper()
            for choice in _aliases(field.validation_alias)
            if choice.upper().startswith(ENV_PREFIX)
        )
    return frozenset(names)


def warn_about_unknown_variables(environ: Mapping[str, str]) -> None:
    """Log each ``WATCHKEEPER_*`` variable that is no setting, naming the nearest setting."""
    known = _known_variables()
    for name in sorted(environ):
        spelt = name.upper()
        if not spelt.startswith(ENV_PREFIX) or spelt in known or spelt in NOT_SETTINGS:
            continue
        nearest = difflib.get_close_matches(spelt, sorted(known), n=1)
        hint = f"did you mean {nearest[0]}?" if nearest else "see the configuration table in README"
        logger.warning("%s is not a Watchkeeper setting and is ignored; %s", name, hint)


def load_settings(**overrides: Any) -> Settings:
    """Build :class:`Settings` from the environment plus ``overrides``, or explain what is wrong."""
    warn_about_unknown_variables(os.environ)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = [_describe(error) for error in exc.errors()]
        raise ConfigurationError(
            "Invalid Watchkeeper configuration:\n  " + "\n  ".join(lines)
        ) from None
    except ValueError as exc:
        raise ConfigurationError(f"Invalid Watchkeeper configuration:\n  {exc}") from None
