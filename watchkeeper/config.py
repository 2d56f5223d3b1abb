"""Watchkeeper's settings: one object, from code, ``WATCHKEEPER_*`` variables and ``DATABASE_URL``.

A bad value fails at start-up with :class:`ConfigurationError`, whose message names the
environment variable and says what was expected, so an operator can fix it without reading code.
"""

from __future__ import annotations

import os
import re
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "WATCHKEEPER_"

# Request recording's defaults, shared with the code-level options (instrumentation.options,
# instrumentation.identity) so the two ways of configuring start from the same values.
DEFAULT_EXCLUDED_PATHS = ("/health", "/livez", "/readyz", "/metrics", "/watchkeeper", "/static")
DEFAULT_TRACE_HEADER = "X-Trace-ID"
DEFAULT_USER_HEADER = "X-User-ID"
DEFAULT_ORG_HEADER = "X-Org-ID"
DEFAULT_SESSION_HEADER = "X-Session-ID"


class ConfigurationError(ValueError):
    """A setting is missing or has a value Watchkeeper cannot use."""


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


_RETENTION_FIELDS = (
    "retention_spans",
    "retention_logs",
    "retention_metrics",
    "retention_minute_rollups",
    "retention_hour_rollups",
)


class Settings(BaseSettings):
    """Everything Watchkeeper can be told. Every field is also a ``WATCHKEEPER_<NAME>`` variable."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        validate_default=True,
        populate_by_name=True,
    )

    enabled: bool = Field(True, description="Record anything at all; off makes every API a no-op.")
    database_url: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("WATCHKEEPER_DATABASE_URL", "DATABASE_URL", "database_url"),
        description="PostgreSQL URL (postgresql://…) shared by app replicas; unset means SQLite.",
    )
    sqlite_path: Path = Field(
        Path("watchkeeper.db"), description="SQLite file used when no database URL is given."
    )
    service: str = Field("app", min_length=1, description="Name of the monitored service.")
    instance: str = Field(
        default_factory=_default_instance, min_length=1, description="This process's name."
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
    migrate_on_start: bool = Field(
        True, description="Bring the store's schema up to date when Watchkeeper starts."
    )
    redact: bool = Field(
        True, description="Redact personal data (e-mail, phone, cards, keys) before storing."
    )
    redact_fields: list[str] = Field(
        default_factory=list, description="Extra field names whose values are always redacted."
    )
    redact_patterns: list[str] = Field(
        default_factory=list, description="Extra regular expressions to redact (JSON list)."
    )
    api_keys: list[SecretStr] = Field(
        default_factory=list,
        description="Keys that open the API, dashboard and protected endpoints (JSON list).",
    )
    open_access: bool = Field(
        False, description="Serve the API and dashboard without a key (local development only)."
    )
    protect_metrics: bool = Field(True, description="Require a key for /metrics.")
    metrics_multiprocess_dir: Path | None = Field(
        None,
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
        description="Per-integration health thresholds (JSON object: name -> any of "
        "warn_error_rate, fail_error_rate, warn_p95_seconds, fail_p95_seconds, min_requests).",
    )
    required_integrations: list[str] = Field(
        default_factory=list,
        description="Integrations that must be healthy for /health/ready to pass (JSON list).",
    )
    health_request_checks: bool = Field(
        False, description="Also judge each request route's error rate and p95 in /health."
    )
    system_sample_interval: float = Field(
        5.0, gt=0, description="Seconds between samples of CPU, memory, disk and network."
    )
    exclude_paths: list[str] = Field(
        default_factory=lambda: list(DEFAULT_EXCLUDED_PATHS),
        description="Path prefixes whose requests are not recorded (JSON list).",
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
        description="Extra host -> integration name mappings for outbound calls (JSON object; "
        "'*.example.com' matches subdomains), added to the built-in AI providers.",
    )
    model_prices: dict[str, ModelPrice] = Field(
        default_factory=dict,
        description="Model prices overriding genai-prices (JSON object: model -> "
        "{input_per_million, output_per_million} in US dollars).",
    )
    raise_internal_errors: bool = Field(
        False, description="Re-raise Watchkeeper's own errors (for its test suite), not just log."
    )

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        url = value.get_secret_value()
        if not url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
            scheme = url.split("://", 1)[0] if "://" in url else url[:12]
            raise ValueError(
                f"expected a PostgreSQL URL such as postgresql://user@host:5432/db, "
                f"got one starting with {scheme!r}"
            )
        return value

    @field_validator(*_RETENTION_FIELDS, mode="before")
    @classmethod
    def _seconds_from_text(cls, value: object) -> object:
        # Environment variables arrive as text, and pydantic reads "3600" as neither seconds
        # nor ISO 8601; the descriptions promise both.
        if isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value.strip()):
            return float(value)
        return value

    @field_validator(*_RETENTION_FIELDS)
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

    @model_validator(mode="after")
    def _batch_fits_buffer(self) -> Settings:
        if self.batch_size > self.buffer_size:
            raise ValueError(f"must not exceed WATCHKEEPER_BUFFER_SIZE ({self.buffer_size})")
        return self


def _describe(error: dict[str, Any]) -> str:
    field = str(error["loc"][0]) if error["loc"] else "batch_size"
    env_name = "DATABASE_URL" if field == "database_url" else f"{ENV_PREFIX}{field.upper()}"
    shown = "(secret)" if field == "database_url" else repr(error.get("input"))
    if not error["loc"]:
        shown = f"{getattr(error.get('input'), field, '')!r}"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"{field}: unknown setting (given {shown}); see the configuration table in README"
    return f"{env_name}: {message} (given {shown})"


def load_settings(**overrides: Any) -> Settings:
    """Build :class:`Settings` from the environment plus ``overrides``, or explain what is wrong."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = [_describe(dict(error)) for error in exc.errors()]
        raise ConfigurationError(
            "Invalid Watchkeeper configuration:\n  " + "\n  ".join(lines)
        ) from None
    except ValueError as exc:
        raise ConfigurationError(f"Invalid Watchkeeper configuration:\n  {exc}") from None
