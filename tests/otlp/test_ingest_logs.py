"""OTLP/HTTP log ingest end to end: Python ``logging`` through the OpenTelemetry SDK's
LoggingHandler and its official OTLP log exporter, and hand-written OTLP JSON, sent to a real
uvicorn server, read back through Watchkeeper's log search."""

from __future__ import annotations

import gzip
import logging
import secrets
from collections.abc import Iterator

import httpx
import orjson
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    InMemoryLogRecordExporter,
    LogRecordExportResult,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from tests.otlp.served import INGEST_KEY, START_NS, Served, otlp_json


@pytest.fixture
def python_logger() -> Iterator[logging.Logger]:
    """A logger of its own, so the records reach only the OpenTelemetry handler under test."""
    logger = logging.getLogger(f"billing.jobs.{secrets.token_hex(4)}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger
    for handler in list(logger.handlers):
        logger.removeHandler(handler)


def _sdk_records(logger: logging.Logger) -> tuple[int, int, list[ReadableLogRecord]]:
    """Four lines from Python ``logging``, three inside a span, made by the real SDK."""
    memory = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    provider = LoggerProvider(
        resource=Resource.create({"service.name": "billing", "tenant.id": "acme"})
    )
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    handler = LoggingHandler(level=logging.DEBUG, logger_provider=provider)
    logger.addHandler(handler)
    tracer = TracerProvider().get_tracer("billing")
    with tracer.start_as_current_span("charge") as span:
        logger.debug("retrying charge %s", "ch_1")
        logger.warning("card declined", extra={"enduser.id": "user-7", "attempt": 2})
        try:
            raise ValueError("no such card")
        except ValueError:
            logger.exception("charge failed")
    logger.info("nightly run finished")
    provider.shutdown()
    context = span.get_span_context()
    return context.trace_id, context.span_id, list(memory.get_finished_logs())


# The SDK's own handler, which its newer releases point to opentelemetry-instrumentation-logging
# for; both send the same records.
@pytest.mark.filterwarnings("ignore:`LoggingHandler` in `opentelemetry-sdk` is deprecated")
@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_python_logging_through_the_official_exporter_is_searchable(
    served: Served, python_logger: logging.Logger, compression: Compression
) -> None:
    trace_id, span_id, records = _sdk_records(python_logger)
    exporter = OTLPLogExporter(
        endpoint=served.logs_url,
        headers={"Authorization": f"Bearer {INGEST_KEY}"},
        compression=compression,
        timeout=10,
    )
    assert exporter.export(records) is LogRecordExportResult.SUCCESS
    exporter.shutdown()  # type: ignore[no-untyped-call]

    in_trace = served.api("/logs", trace_id=f"{trace_id:032x}")["items"]
    by_message = {line["message"]: line for line in in_trace}
    assert set(by_message) == {"retrying charge ch_1", "card declined", "charge failed"}
    debug, warning, failed = (
        by_message["retrying charge ch_1"],
        by_message["card declined"],
        by_message["charge failed"],
    )
    assert (debug["level"], warning["level"], failed["level"]) == (10, 30, 40)
    assert warning["logger"] == python_logger.name
    assert warning["span_id"] == f"{span_id:016x}"
    assert (warning["user_id"], warning["org_id"]) == ("user-7", "acme")
    assert debug["user_id"] is None
    assert warning["attributes"]["service.name"] == "billing"
    assert warning["attributes"]["attempt"] == 2
    assert failed["attributes"]["exception.type"] == "ValueError"
    assert failed["attributes"]["exception.message"] == "no such card"

    # The line outside the span has no trace; a level filter and a text search find it.
    [finished] = served.api("/logs", level=20, text="nightly run")["items"]
    assert (finished["trace_id"], finished["level"]) == (None, 20)
    assert {line["message"] for line in served.api("/logs", level=30)["items"]} == {
        "card declined",
        "charge failed",
    }


def test_a_gzip_json_body_with_hex_ids_is_stored(served: Served) -> None:
    trace_hex, span_hex = secrets.token_hex(16), secrets.token_hex(8)
    body = otlp_json(
        "Logs",
        [
            {
                "timeUnixNano": str(START_NS),
                "severityNumber": 17,
                "severityText": "ERROR",
                "body": {"kvlistValue": {"values": [{"key": "msg", "value": {"intValue": 7}}]}},
                "traceId": trace_hex,
                "spanId": span_hex,
                "attributes": [{"key": "user.id", "value": {"stringValue": "u-3"}}],
            },
            {
                "observedTimeUnixNano": START_NS,
                "severityText": "warn",
                "body": {"stringValue": "w"},
            },
        ],
        scope="api.handlers",
    )
    answer = httpx.post(
        served.logs_url,
        content=gzip.compress(orjson.dumps(body)),
        headers={
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "X-API-Key": INGEST_KEY,
        },
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {}

    stored = {line.message: line for line in served.logs()}
    structured = stored['{"msg":7}']
    assert (structured.trace_id, structured.span_id) == (trace_hex, span_hex)
    assert (structured.level, structured.logger, structured.user_id) == (40, "api.handlers", "u-3")
    assert structured.time.timestamp() == START_NS / 1e9
    assert structured.attributes["service.name"] == "go-api"
    assert (stored["w"].level, stored["w"].time.timestamp()) == (30, START_NS / 1e9)
