"""OTLP/HTTP trace ingest, Watchkeeper beside Arize Phoenix: the same protobuf payloads posted to
each one's ``/v1/traces``, measured until every accepted span is stored.

Watchkeeper runs as ``watchkeeper serve`` does (``create_app`` under uvicorn with uvloop and
httptools, a SQLite file); Phoenix as ``phoenix serve`` (its own SQLite file), from
``.cache/phoenix-venv`` (``scripts/install-phoenix``). Each server is pinned to core 0, the
sender to core 1. Payloads are built once, before any clock starts, with opentelemetry-proto:
512 spans each, in traces of a request (SERVER, HTTP attributes, user and session), an LLM call
(CLIENT, GenAI provider, model, operation and token counts), a tool call and a step of internal
work; every payload has ids of its own, so neither server sees a span twice. Four connections
post them; a payload refused for want of room (Phoenix's 503 at capacity, Watchkeeper's
``partial_success``) is sent again after a pause, as an OTLP exporter would.

Figures per server, for the measured payloads only (a warm-up payload goes first): accepted
spans per second (first post to last answer), stored spans per second (first post until the
server's database holds them all, counted with SQLite reads), and spans per CPU-second of the
receiving process (user + system time from psutil, children included, over the same span of
time): the cost of ingest per core, storage included.
"""

from __future__ import annotations

import os
import random
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from bench.common import Result
from tests.support.phoenix import Phoenix, free_port, install_phoenix

SPANS_PER_PAYLOAD = 512
SPANS_PER_TRACE = 4
CONNECTIONS = 4
SERVER_CORE = 0
SENDER_CORE = 1
API_KEY = "bench-otlp-key-0123456789"
PROTOBUF = "application/x-protobuf"
START_SECONDS = 900.0
"""Phoenix migrates its fresh database at start, on one core here: minutes when others are busy."""
STORE_SECONDS = 900.0
"""How long a server may take to store what it accepted before the run is called failed."""
RETRY_PAUSE = 0.05


def _value(value: str | int) -> AnyValue:
    if isinstance(value, int):
        return AnyValue(int_value=value)
    return AnyValue(string_value=value)


def _attributes(**values: str | int) -> list[KeyValue]:
    return [
        KeyValue(key=key.replace("__", "."), value=_value(value)) for key, value in values.items()
    ]


def _trace(rng: random.Random, start_ns: int) -> list[Span]:
    trace_id = rng.getrandbits(128).to_bytes(16, "big")
    root, call, tool, step = (rng.getrandbits(64).to_bytes(8, "big") for _ in range(4))
    user = f"user-{rng.randrange(1_000)}"
    route = f"/api/route-{rng.randrange(16)}"
    error = rng.random() < 0.02

    def span(
        span_id: bytes,
        parent: bytes,
        name: str,
        kind: Span.SpanKind.ValueType,
        offset_ms: int,
        **attributes: str | int,
    ) -> Span:
        return Span(
            trace_id=trace_id,
            span_id=span_id,
            parent_span_id=parent,
            name=name,
            kind=kind,
            start_time_unix_nano=start_ns + offset_ms * 1_000_000,
            end_time_unix_nano=start_ns + (offset_ms + rng.randrange(5, 400)) * 1_000_000,
            attributes=_attributes(**attributes),
        )

    request = span(
        root, b"", f"POST {route}", Span.SPAN_KIND_SERVER, 0,
        http__request__method="POST", http__route=route, http__response__status_code=200,
        enduser__id=user, session__id=f"session-{rng.randrange(100)}",
    )  # fmt: skip
    llm = span(
        call, root, "chat gpt-4o-mini", Span.SPAN_KIND_CLIENT, 10,
        gen_ai__provider__name="openai", gen_ai__operation__name="chat",
        gen_ai__request__model="gpt-4o-mini", gen_ai__usage__input_tokens=rng.randrange(50, 2_000),
        gen_ai__usage__output_tokens=rng.randrange(10, 500), server__address="api.openai.com",
    )  # fmt: skip
    if error:
        llm.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message="rate limited"))
    lookup = span(
        tool, root, "execute_tool lookup", Span.SPAN_KIND_INTERNAL, 5,
        gen_ai__operation__name="execute_tool", gen_ai__tool__name="lookup",
    )  # fmt: skip
    render = span(step, root, "render", Span.SPAN_KIND_INTERNAL, 420)
    return [request, llm, lookup, render]


def build_payloads(count: int, seed: int) -> list[bytes]:
    """``count`` serialized ExportTraceServiceRequests of SPANS_PER_PAYLOAD spans, ids unique."""
    rng = random.Random(seed)
    resource = Resource(
        attributes=_attributes(service__name="bench-sender", service__version="1.0")
    )
    scope = InstrumentationScope(name="bench.otlp", version="1.0")
    now = time.time_ns() - 60 * 1_000_000_000
    payloads = []
    for index in range(count):
        spans = [
            span
            for trace in range(SPANS_PER_PAYLOAD // SPANS_PER_TRACE)
            for span in _trace(rng, now + (index * 1_000 + trace) * 1_000_000)
        ]
        request = ExportTraceServiceRequest(
            resource_spans=[
                ResourceSpans(resource=resource, scope_spans=[ScopeSpans(scope=scope, spans=spans)])
            ]
        )
        payloads.append(request.SerializeToString())
    return payloads


@dataclass(frozen=True)
class Measured:
    accepted_per_second: float
    stored_per_second: float
    per_cpu_second: float


@dataclass
class Server:
    """A receiving server: where to post, what it holds stored, which process does the work."""

    name: str
    traces_url: str
    headers: dict[str, str]
    process: psutil.Process
    stored: Callable[[], int]
    log: Path

    def failed(self, error: BaseException) -> RuntimeError:
        tail = self.log.read_text(errors="replace")[-2_000:]
        return RuntimeError(f"{self.name}: {error!r}; its log ends:\n{tail}")


def _count(database: Path, table: str) -> Callable[[], int]:
    def count() -> int:
        try:
            with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as connection:
                return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        except sqlite3.OperationalError:  # not created yet
            return 0

    return count


def _cpu_seconds(process: psutil.Process) -> float:
    total = 0.0
    for each in (process, *process.children(recursive=True)):
        try:
            times = each.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


@contextmanager
def watchkeeper_server(directory: Path) -> Iterator[Server]:
    directory.mkdir()
    port = free_port()
    environment = {
        **os.environ,
        "WATCHKEEPER_SQLITE_PATH": str(directory / "watchkeeper.db"),
        "WATCHKEEPER_API_KEYS": API_KEY,
        "WATCHKEEPER_BUFFER_SIZE": "1000000",
        "WATCHKEEPER_SPOOL_DIR": str(directory / "spool"),
    }
    command = [
        "taskset", "-c", str(SERVER_CORE), sys.executable, "-m", "uvicorn", "--factory",
        "watchkeeper.runtime.runtime:create_app", "--port", str(port), "--loop", "uvloop",
        "--http", "httptools", "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    log = (directory / "watchkeeper.log").open("wb")
    process = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait(lambda: httpx.get(f"{url}/health/live", timeout=5).status_code == 200, process)
        yield Server(
            "Watchkeeper",
            f"{url}/v1/traces",
            {"Authorization": f"Bearer {API_KEY}"},
            psutil.Process(process.pid),
            _count(directory / "watchkeeper.db", "wk_spans"),
            directory / "watchkeeper.log",
        )
    finally:
        process.terminate()
        process.wait(60)
        log.close()


@contextmanager
def phoenix_server(directory: Path) -> Iterator[Server]:
    directory.mkdir()
    problem = install_phoenix()
    if problem is not None:
        raise RuntimeError(f"Arize Phoenix cannot be installed: {problem}")
    phoenix = Phoenix(directory, ("taskset", "-c", str(SERVER_CORE)))
    try:
        phoenix.wait_ready(START_SECONDS)
        yield Server(
            "Arize Phoenix",
            phoenix.traces_url,
            {},
            psutil.Process(phoenix.process.pid),
            _count(phoenix.database, "spans"),
            phoenix.log,
        )
    finally:
        phoenix.stop()


def _wait(ready: Callable[[], bool], process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the server exited on start")
        try:
            if ready():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not start")


def _accepted(answer: httpx.Response) -> int | None:
    """Spans the server took from one payload, or ``None`` if it refused it for now."""
    if answer.status_code in (429, 503):
        return None
    answer.raise_for_status()
    response = ExportTraceServiceResponse()
    response.ParseFromString(answer.content)
    rejected = response.partial_success.rejected_spans
    if rejected:
        raise RuntimeError(f"{rejected} spans rejected: {response.partial_success.error_message}")
    return SPANS_PER_PAYLOAD


def _send(server: Server, payloads: list[bytes]) -> int:
    """Post every payload over CONNECTIONS connections; the spans accepted."""
    pending = iter(payloads)
    lock = threading.Lock()
    accepted = [0] * CONNECTIONS
    failures: list[BaseException] = []
    headers = {**server.headers, "Content-Type": PROTOBUF}

    def worker(slot: int) -> None:
        try:
            with httpx.Client(headers=headers, timeout=300) as client:
                while True:
                    with lock:
                        payload = next(pending, None)
                    if payload is None:
                        return
                    while (
                        taken := _accepted(client.post(server.traces_url, content=payload))
                    ) is None:
                        time.sleep(RETRY_PAUSE)
                    accepted[slot] += taken
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=worker, args=(slot,)) for slot in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise server.failed(failures[0])
    return sum(accepted)


def _until_stored(server: Server, expected: int) -> None:
    deadline = time.monotonic() + STORE_SECONDS
    while server.stored() < expected:
        if time.monotonic() > deadline:
            raise server.failed(TimeoutError(f"stored {server.stored()} of {expected} spans"))
        time.sleep(0.1)


def measure(server: Server, payloads: list[bytes]) -> Measured:
    before = server.stored()
    cpu = _cpu_seconds(server.process)
    started = time.perf_counter()
    accepted = _send(server, payloads)
    answered = time.perf_counter()
    _until_stored(server, before + accepted)
    stored = time.perf_counter()
    used = _cpu_seconds(server.process) - cpu
    sys.stderr.write(
        f"  {server.name}: {accepted:,} spans accepted in {answered - started:.2f} s, stored in "
        f"{stored - started:.2f} s, {used:.2f} CPU-s\n"
    )
    return Measured(accepted / (answered - started), accepted / (stored - started), accepted / used)


@contextmanager
def _pinned_sender() -> Iterator[None]:
    original = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {SENDER_CORE})
    try:
        yield
    finally:
        os.sched_setaffinity(0, original)


def run(quick: bool) -> list[Result]:
    # Phoenix stores some 50 spans per CPU-second here: larger runs take it tens of minutes.
    payloads, rounds = (10, 1) if quick else (30, 2)
    seed = secrets.randbits(32)
    # Built before any clock starts; each round and server sends the same bytes.
    batches = [build_payloads(payloads + 1, seed + index) for index in range(rounds)]
    results: dict[str, list[Measured]] = {"Watchkeeper": [], "Arize Phoenix": []}
    with (
        tempfile.TemporaryDirectory(prefix="watchkeeper-bench-otlp-") as directory,
        _pinned_sender(),
        watchkeeper_server(Path(directory, "watchkeeper")) as ours,
        phoenix_server(Path(directory, "phoenix")) as theirs,
    ):
        for server in (ours, theirs):
            warm_up = _send(server, [batches[0][0]])
            _until_stored(server, warm_up)
        for batch in batches:
            # Interleaved: the machine's noise falls on both alike.
            for server in (ours, theirs):
                results[server.name].append(measure(server, batch[1:]))
    ours_median, theirs_median = (
        Measured(
            statistics.median(m.accepted_per_second for m in measured),
            statistics.median(m.stored_per_second for m in measured),
            statistics.median(m.per_cpu_second for m in measured),
        )
        for measured in results.values()
    )
    rows = (
        (
            "spans per CPU-second of the receiving process (one core)",
            "per_cpu_second",
            "spans/CPU-s",
        ),
        ("accepted spans/s", "accepted_per_second", "spans/s"),
        ("stored spans/s (first post until all stored)", "stored_per_second", "spans/s"),
    )
    return [
        Result(
            f"OTLP ingest: {title}",
            "Watchkeeper /v1/traces",
            getattr(ours_median, field),
            "Arize Phoenix /v1/traces",
            getattr(theirs_median, field),
            unit,
            "(comparison)",
            True,
        )
        for title, field, unit in rows
    ]


if __name__ == "__main__":
    from bench.common import main_for

    main_for(run)
