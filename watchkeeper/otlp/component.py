"""``POST /v1/traces``, ``/v1/logs`` and ``/v1/metrics``: OTLP/HTTP ingest as a runtime component.

Spans, log records and metric points sent by any OpenTelemetry SDK go through the runtime's
recorder like the app's own, so pricing, rollups, health, ``/metrics``, the log search and the
dashboard see them alike. Ingest never waits for room: what the recorder's buffer cannot take is
dropped and counted there, and the sender is told how many in the answer's ``partial_success``.
Decoding runs on a worker thread, so a large body never holds up the event loop the host app's
requests are served on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import Response
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from starlette.concurrency import run_in_threadpool

from watchkeeper.access.control import AccessControl
from watchkeeper.access.keys import ApiKeyAuth, Forbidden, Unauthorized, presented_key
from watchkeeper.access.limits import KeyRateLimiter, RateLimited
from watchkeeper.access.roles import Permission
from watchkeeper.config import Settings
from watchkeeper.instrumentation.pricing import install_pricing
from watchkeeper.model.events import Event
from watchkeeper.otlp.common import Mapped
from watchkeeper.otlp.decode import (
    INVALID_ARGUMENT,
    PERMISSION_DENIED,
    UNAUTHENTICATED,
    UNAVAILABLE,
    BadRequest,
    Encoding,
    check_content_encoding,
    decode_request,
    encode,
    encode_status,
    encoding_of,
    gunzip,
)
from watchkeeper.otlp.logs import map_logs
from watchkeeper.otlp.metrics import map_metrics
from watchkeeper.otlp.spans import map_spans
from watchkeeper.recording.recorder import Recorder
from watchkeeper.recording.stats import DropReason

R = TypeVar("R", bound=Message)


@dataclass(frozen=True)
class Signal(Generic[R]):
    """One OTLP signal: where it is sent, its request, its mapping and its answer."""

    name: str
    """``traces``, ``logs`` or ``metrics``: the last part of its path, ``/v1/<name>``."""
    request: type[R]
    map: Callable[[R], Mapped[Any]]
    response: Callable[..., Message]
    rejected_field: str
    """The field of the response's ``partial_success`` that counts what was not recorded."""
    items: str
    """What the answer's message calls the signal's items."""


TRACES = Signal(
    "traces",
    ExportTraceServiceRequest,
    map_spans,
    ExportTraceServiceResponse,
    "rejected_spans",
    "span(s)",
)
LOGS = Signal(
    "logs",
    ExportLogsServiceRequest,
    map_logs,
    ExportLogsServiceResponse,
    "rejected_log_records",
    "log record(s)",
)
METRICS = Signal(
    "metrics",
    ExportMetricsServiceRequest,
    map_metrics,
    ExportMetricsServiceResponse,
    "rejected_data_points",
    "data point(s)",
)
SIGNALS: Sequence[Signal[Any]] = (TRACES, LOGS, METRICS)


class OtlpComponent:
    name = "otlp"

    def __init__(
        self,
        recorder: Recorder,
        auth: ApiKeyAuth,
        prefix: str,
        max_body_bytes: int,
        limiter: KeyRateLimiter | None = None,
    ) -> None:
        self.recorder = recorder
        self.auth = auth
        self.limiter = limiter
        self.max_body_bytes = max_body_bytes
        self._router = APIRouter()
        for signal in SIGNALS:
            # Out of the OpenAPI document: its bodies are OTLP messages, not JSON schemas.
            self._router.add_api_route(
                f"{prefix}/v1/{signal.name}",
                self._endpoint(signal),
                methods=["POST"],
                name=f"otlp_{signal.name}",
                include_in_schema=False,
            )

    @classmethod
    def from_settings(
        cls,
        recorder: Recorder,
        settings: Settings,
        prefix: str,
        access: AccessControl | None = None,
    ) -> OtlpComponent:
        """API keys and ingest-only keys may send; only the API keys open the API. Stored keys
        whose role may ingest (ingest-only, super admin) send too, within their rate limit."""
        keys = tuple(
            key.get_secret_value().encode() for key in (*settings.api_keys, *settings.ingest_keys)
        )
        auth = ApiKeyAuth(
            keys,
            settings.open_access,
            directory=access.directory if access else None,
            audit=access.audit if access else None,
        )
        limiter = access.limiter if access else None
        return cls(recorder, auth, prefix, settings.otlp_max_body_bytes, limiter)

    def router(self) -> APIRouter:
        return self._router

    async def start(self) -> None:
        # Other services' AI calls are priced like the app's own, on the flush worker.
        install_pricing(self.recorder)

    async def stop(self) -> None:
        """Nothing of its own runs: what it accepted is the recorder's to flush."""

    def _endpoint(self, signal: Signal[Any]) -> Callable[[Request], Any]:
        async def export(request: Request) -> Response:
            return await self.export(signal, request)

        return export

    async def export(self, signal: Signal[Any], request: Request) -> Response:
        headers = request.headers
        try:
            encoding = encoding_of(headers.get("content-type"))
        except BadRequest as error:
            return _error(error.status, INVALID_ARGUMENT, error.message, Encoding.JSON)
        key = presented_key(headers.get("authorization"), headers.get("x-api-key"))
        try:
            # A stored key is looked up in the store: off the event loop.
            principal = await run_in_threadpool(self.auth.check, key, Permission.INGEST)
            if self.limiter is not None:
                await run_in_threadpool(self.limiter.take, principal)
        except Unauthorized as error:
            return _error(401, UNAUTHENTICATED, error.message, encoding)
        except Forbidden as error:
            return _error(403, PERMISSION_DENIED, error.message, encoding)
        except RateLimited as error:
            refusal = _error(429, UNAVAILABLE, error.message, encoding)
            refusal.headers["Retry-After"] = error.retry_after_header
            return refusal
        try:
            gzipped = check_content_encoding(headers.get("content-encoding"))
            body = await self._read(request)
            answer = await run_in_threadpool(self._ingest, signal, body, encoding, gzipped)
        except BadRequest as error:
            return _error(error.status, INVALID_ARGUMENT, error.message, encoding)
        return Response(encode(answer, encoding), media_type=encoding.value)

    async def _read(self, request: Request) -> bytes:
        """The body, refused as soon as it is known to pass the limit (before reading it all)."""
        limit = self.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise BadRequest(413, f"the body is larger than {limit} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise BadRequest(413, f"the body is larger than {limit} bytes")
        return bytes(body)

    def _ingest(
        self, signal: Signal[Any], body: bytes, encoding: Encoding, gzipped: bool
    ) -> Message:
        if gzipped:
            body = gunzip(body, self.max_body_bytes)
        mapped = signal.map(decode_request(body, encoding, signal.request))
        dropped = self._submit(mapped.events)
        return _answer(signal, mapped, dropped)

    def _submit(self, events: list[Event]) -> int:
        """Hand the events to the recorder; how many it dropped for want of room."""
        if not events or not self.recorder.enabled:
            # Recording is off: accepted and discarded, as every recording call then is.
            return 0
        before = self.recorder.stats().dropped[DropReason.BUFFER_FULL]
        submit = self.recorder.submit
        for event in events:
            submit(event)
        after = self.recorder.stats().dropped[DropReason.BUFFER_FULL]
        # The app's own requests may drop at the same moment; never report more than were sent.
        return min(after - before, len(events))


def _answer(signal: Signal[Any], mapped: Mapped[Any], dropped: int) -> Message:
    rejected = sum(mapped.rejected.values())
    reasons = [f"{count} with {reason}" for reason, count in mapped.rejected.most_common()]
    parts = [f"{rejected} {signal.items} rejected: {', '.join(reasons)}"] if rejected else []
    if dropped:
        parts.append(
            f"{dropped} {signal.items} dropped: Watchkeeper's buffer is full (retry later, or "
            "raise WATCHKEEPER_BUFFER_SIZE)"
        )
    if not parts:
        return signal.response()
    partial = {signal.rejected_field: rejected + dropped, "error_message": "; ".join(parts)}
    return signal.response(partial_success=partial)


def _error(status: int, code: int, message: str, encoding: Encoding) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="watchkeeper"'} if status == 401 else None
    return Response(
        encode_status(code, message, encoding),
        status_code=status,
        media_type=encoding.value,
        headers=headers,
    )
