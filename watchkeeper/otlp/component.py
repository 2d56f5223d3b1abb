"""``POST /v1/traces``: OTLP/HTTP trace ingest as a runtime component.

Spans sent by any OpenTelemetry SDK go through the runtime's recorder like the app's own, so
pricing, rollups, health, ``/metrics`` and the dashboard see them alike. Ingest never waits for
room: spans the recorder's buffer cannot take are dropped and counted there, and the sender is
told how many in the answer's ``partial_success``. Decoding runs on a worker thread, so a large
body never holds up the event loop the host app's requests are served on.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)
from starlette.concurrency import run_in_threadpool

from watchkeeper.access.keys import ApiKeyAuth, Unauthorized, presented_key
from watchkeeper.config import Settings
from watchkeeper.instrumentation.pricing import install_pricing
from watchkeeper.model.events import Span
from watchkeeper.otlp.decode import (
    INVALID_ARGUMENT,
    UNAUTHENTICATED,
    BadRequest,
    Encoding,
    check_content_encoding,
    decode_request,
    encode,
    encode_status,
    encoding_of,
    gunzip,
)
from watchkeeper.otlp.mapping import Mapped, map_request
from watchkeeper.recording.recorder import Recorder
from watchkeeper.recording.stats import DropReason

TRACES_PATH = "/v1/traces"


class OtlpComponent:
    name = "otlp"

    def __init__(
        self, recorder: Recorder, auth: ApiKeyAuth, prefix: str, max_body_bytes: int
    ) -> None:
        self.recorder = recorder
        self.auth = auth
        self.max_body_bytes = max_body_bytes
        self._router = APIRouter()
        # Out of the OpenAPI document: its bodies are OTLP messages, not JSON schemas.
        self._router.add_api_route(
            prefix + TRACES_PATH, self.export_traces, methods=["POST"], include_in_schema=False
        )

    @classmethod
    def from_settings(cls, recorder: Recorder, settings: Settings, prefix: str) -> OtlpComponent:
        """API keys and ingest-only keys may send; only the API keys open the API."""
        keys = tuple(
            key.get_secret_value().encode() for key in (*settings.api_keys, *settings.ingest_keys)
        )
        return cls(
            recorder, ApiKeyAuth(keys, settings.open_access), prefix, settings.otlp_max_body_bytes
        )

    def router(self) -> APIRouter:
        return self._router

    async def start(self) -> None:
        # Other services' AI calls are priced like the app's own, on the flush worker.
        install_pricing(self.recorder)

    async def stop(self) -> None:
        """Nothing of its own runs: what it accepted is the recorder's to flush."""

    async def export_traces(self, request: Request) -> Response:
        headers = request.headers
        try:
            encoding = encoding_of(headers.get("content-type"))
        except BadRequest as error:
            return _error(error.status, INVALID_ARGUMENT, error.message, Encoding.JSON)
        try:
            self.auth.check(presented_key(headers.get("authorization"), headers.get("x-api-key")))
        except Unauthorized as error:
            return _error(401, UNAUTHENTICATED, error.message, encoding)
        try:
            gzipped = check_content_encoding(headers.get("content-encoding"))
            body = await self._read(request)
            answer = await run_in_threadpool(self._ingest, body, encoding, gzipped)
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

    def _ingest(self, body: bytes, encoding: Encoding, gzipped: bool) -> ExportTraceServiceResponse:
        if gzipped:
            body = gunzip(body, self.max_body_bytes)
        mapped = map_request(decode_request(body, encoding))
        dropped = self._submit(mapped.spans)
        return _response(mapped, dropped)

    def _submit(self, spans: list[Span]) -> int:
        """Hand the spans to the recorder; how many it dropped for want of room."""
        if not spans or not self.recorder.enabled:
            # Recording is off: accepted and discarded, as every recording call then is.
            return 0
        before = self.recorder.stats().dropped[DropReason.BUFFER_FULL]
        submit = self.recorder.submit
        for span in spans:
            submit(span)
        after = self.recorder.stats().dropped[DropReason.BUFFER_FULL]
        # The app's own requests may drop at the same moment; never report more than were sent.
        return min(after - before, len(spans))


def _response(mapped: Mapped, dropped: int) -> ExportTraceServiceResponse:
    rejected = sum(mapped.rejected.values())
    if not rejected and not dropped:
        return ExportTraceServiceResponse()
    reasons = [f"{count} with {reason}" for reason, count in mapped.rejected.most_common()]
    parts = [f"{rejected} span(s) rejected: {', '.join(reasons)}"] if rejected else []
    if dropped:
        parts.append(
            f"{dropped} span(s) dropped: Watchkeeper's buffer is full (retry later, or raise "
            "WATCHKEEPER_BUFFER_SIZE)"
        )
    return ExportTraceServiceResponse(
        partial_success=ExportTracePartialSuccess(
            rejected_spans=rejected + dropped, error_message="; ".join(parts)
        )
    )


def _error(status: int, code: int, message: str, encoding: Encoding) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="watchkeeper"'} if status == 401 else None
    return Response(
        encode_status(code, message, encoding),
        status_code=status,
        media_type=encoding.value,
        headers=headers,
    )
