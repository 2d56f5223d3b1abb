"""Requests per second, p99 latency and CPU per request of a FastAPI app under wrk: bare, with
Watchkeeper (its local collector, or embedded), OpenTelemetry, prometheus-fastapi-instrumentator.

Pinned scenarios run the server on core 0 (``taskset``) and wrk on core 1. The local collector
the app starts widens its own CPU affinity to every core (see ``watchkeeper/collector/process.py``),
so in the "local collector" variant it may run on core 1, beside wrk; the "same core" variant
forces it back onto core 0 with the app (every thread, once it answers) to show what it costs
there. The production scenario serves ``--loop uvloop --http httptools`` with a path-parameter
route, as apps are deployed; the two-worker scenario is ``uvicorn --workers 2`` with nothing
pinned. Variants are interleaved over rounds and the median per variant is compared with the bare
app of the same run.

Every Watchkeeper variant gets its own SQLite file and collector directory, and is measured only
once its collector answers ``/metrics`` through the app with the warm-up's requests counted.
CPU per request is the CPU time (user + system, psutil) the app server's processes, and
separately the collector's process (its id is in its lock file), spent during the measured run,
over the requests wrk completed. Between variants the previous collector is awaited until it has
left, so it takes no CPU from the next one.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from bench.common import Result
from watchkeeper.collector.lock import holder

PRODUCTION_SERVER = ("--loop", "uvloop", "--http", "httptools")
THROUGHPUT_TARGET = 0.9
THROUGHPUT_GOAL = 0.95
LATENCY_TARGET = 1.2
START_SECONDS = 120.0
"""Generous: on this shared machine a collector's start (imports, migrations) can take long."""


@dataclass(frozen=True)
class Variant:
    name: str
    label: str
    factory: str
    collector: str | None = None
    """``WATCHKEEPER_COLLECTOR`` for Watchkeeper's variants (``auto`` or ``off``)."""
    same_core: bool = False
    """Move the collector onto the app's core once it answers."""
    target: bool = False
    """Held to the throughput and latency targets (else information or comparison)."""


BARE = Variant("bare", "bare app", "bare")
COLLECTOR = Variant(
    "collector",
    "Watchkeeper, local collector (free to run on any core, wrk's included)",
    "watchkeeper",
    collector="auto",
    target=True,
)
SAME_CORE = Variant(
    "same core",
    "Watchkeeper, local collector forced onto the app's core",
    "watchkeeper",
    collector="auto",
    same_core=True,
)
EMBEDDED = Variant(
    "embedded", "Watchkeeper embedded (WATCHKEEPER_COLLECTOR=off)", "watchkeeper", "off"
)
OPENTELEMETRY = Variant("opentelemetry", "opentelemetry-instrumentation-fastapi", "opentelemetry")
PROMETHEUS = Variant("prometheus", "prometheus-fastapi-instrumentator", "prometheus")


@dataclass(frozen=True)
class Scenario:
    path: str
    route: str
    """The route template, as Watchkeeper's metrics name it."""
    title: str
    variants: tuple[Variant, ...]
    server_options: tuple[str, ...] = ()
    workers: int = 1
    """More than one: ``uvicorn --workers N``, nothing pinned."""

    @property
    def pinned(self) -> bool:
        return self.workers == 1


SCENARIOS = (
    Scenario(
        "/items/42",
        "/items/{item_id}",
        "path parameter, uvloop + httptools, server on core 0",
        (BARE, COLLECTOR, SAME_CORE, EMBEDDED, OPENTELEMETRY, PROMETHEUS),
        PRODUCTION_SERVER,
    ),
    Scenario(
        "/items/42",
        "/items/{item_id}",
        "path parameter, uvloop + httptools, 2 workers unpinned",
        (BARE, COLLECTOR, EMBEDDED, OPENTELEMETRY, PROMETHEUS),
        PRODUCTION_SERVER,
        workers=2,
    ),
    Scenario(
        "/hello",
        "/hello",
        "hello world, server on core 0",
        (BARE, COLLECTOR, OPENTELEMETRY, PROMETHEUS),
    ),
    Scenario(
        "/call",
        "/call",
        "one httpx call, server on core 0",
        (BARE, COLLECTOR, OPENTELEMETRY, PROMETHEUS),
    ),
)


@dataclass(frozen=True)
class Sample:
    rate: float
    p99_ms: float
    app_cpu_us: float
    """CPU µs per request of the app server's processes."""
    collector_cpu_us: float | None = None


@dataclass(frozen=True)
class Run:
    rate: float
    p99_ms: float
    requests: int


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _clean_environment() -> dict[str, str]:
    """The caller's environment without Watchkeeper's settings: each variant sets its own."""
    return {
        name: value for name, value in os.environ.items() if not name.startswith("WATCHKEEPER_")
    }


@contextlib.contextmanager
def _serve(
    factory: str,
    environment: dict[str, str],
    server_options: Sequence[str] = (),
    core: int | None = 0,
    workers: int = 1,
) -> Iterator[tuple[str, psutil.Process]]:
    port = _free_port()
    pinning = ["taskset", "-c", str(core)] if core is not None else []
    command = [
        *pinning,
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        f"bench.http_apps:{factory}",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        *(["--workers", str(workers)] if workers > 1 else []),
        *server_options,
    ]
    process = subprocess.Popen(command, env=environment)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_SECONDS
        while not _answers(url + "/docs"):
            if process.poll() is not None:
                raise RuntimeError(f"the {factory} app exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {factory} app did not answer in {START_SECONDS:.0f} s")
            time.sleep(0.1)
        yield url, psutil.Process(process.pid)  # taskset execs: the pid is the server's
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(30)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def _wrk(url: str, seconds: int, pinned: bool) -> Run:
    pinning = ["taskset", "-c", "1"] if pinned else []
    output = subprocess.run(
        [*pinning, "wrk", "-t1", "-c32", "--latency", f"-d{seconds}s", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    requests = re.search(r"^\s*(\d+) requests in", output, re.MULTILINE)
    if rate is None or p99 is None or requests is None:
        raise RuntimeError(f"wrk printed no rate, p99 or request count:\n{output}")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return Run(float(rate.group(1)), float(p99.group(1)) * scale, int(requests.group(1)))


def _cpu_seconds(processes: Sequence[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def _collector(directory: Path) -> psutil.Process | None:
    for lock in directory.glob("*.lock"):
        pid = holder(lock)
        if pid is not None:
            return psutil.Process(pid)
    return None


def _collector_counts(url: str, route: str) -> bool:
    """Whether the collector answers /metrics through the app, the route's requests counted."""
    try:
        response = httpx.get(url + "/metrics", timeout=10)
    except httpx.TransportError:
        return False
    wanted = f'handler="{route}"'
    return response.status_code == 200 and any(
        line.startswith("http_requests_total{") and wanted in line
        for line in response.text.splitlines()
    )


def _wait(condition: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + START_SECONDS
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {condition}")
        time.sleep(0.2)


@dataclass
class _Places:
    """A variant's fresh SQLite file and collector directory (short: socket paths are limited)."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="wk-", dir="/tmp")))

    @property
    def collector(self) -> Path:
        return self.root / "c"

    def environment(self, base: dict[str, str], variant: Variant) -> dict[str, str]:
        if variant.collector is None:
            return base
        return {
            **base,
            "WATCHKEEPER_COLLECTOR": variant.collector,
            "WATCHKEEPER_COLLECTOR_DIRECTORY": str(self.collector),
            "WATCHKEEPER_SQLITE_PATH": str(self.root / "bench.db"),
            # The collector's /metrics, unauthenticated, tells when it is up and counting.
            "WATCHKEEPER_PROTECT_METRICS": "false",
        }


def _sample(scenario: Scenario, variant: Variant, seconds: int, base: dict[str, str]) -> Sample:
    places = _Places()
    collector: psutil.Process | None = None
    try:
        with _serve(
            variant.factory,
            places.environment(base, variant),
            scenario.server_options,
            core=0 if scenario.pinned else None,
            workers=scenario.workers,
        ) as (url, server):
            target = url + scenario.path
            _wrk(target, 1, scenario.pinned)  # warm-up; starts the local collector
            if variant.collector == "auto":
                _wait(
                    "the collector to count requests",
                    lambda: _collector_counts(url, scenario.route),
                )
                collector = _collector(places.collector)
                if collector is None:
                    raise RuntimeError("the collector answered but holds no lock")
                if variant.same_core:
                    subprocess.run(
                        ["taskset", "-a", "-cp", "0", str(collector.pid)],
                        check=True,
                        capture_output=True,
                    )
                _wrk(target, 1, scenario.pinned)  # the collector warm too
            app = [server, *(p for p in server.children(recursive=True) if p != collector)]
            app_before = _cpu_seconds(app)
            collector_before = _cpu_seconds([collector] if collector else [])
            run = _wrk(target, seconds, scenario.pinned)
            app_cpu = _cpu_seconds(app) - app_before
            collector_cpu = _cpu_seconds([collector] if collector else []) - collector_before
    finally:
        if collector is not None:
            _await_exit(collector)
        shutil.rmtree(places.root, ignore_errors=True)
    return Sample(
        run.rate,
        run.p99_ms,
        app_cpu / run.requests * 1e6,
        collector_cpu / run.requests * 1e6 if collector is not None else None,
    )


def _await_exit(collector: psutil.Process) -> None:
    """The collector leaves once no app is connected: let it, so the next run has the CPU."""
    try:
        collector.wait(START_SECONDS)
    except psutil.TimeoutExpired:
        collector.terminate()
        collector.wait(30)
    except psutil.NoSuchProcess:
        pass


def _measure(
    scenario: Scenario, rounds: int, seconds: int, environment: dict[str, str]
) -> dict[str, Sample]:
    samples: dict[str, list[Sample]] = {variant.name: [] for variant in scenario.variants}
    for _ in range(rounds):
        for variant in scenario.variants:
            latest = _sample(scenario, variant, seconds, environment)
            samples[variant.name].append(latest)
            collector = (
                f", collector {latest.collector_cpu_us:.0f} µs"
                if latest.collector_cpu_us is not None
                else ""
            )
            sys.stderr.write(
                f"  {scenario.title} | {variant.name}: {latest.rate:,.0f} req/s, "
                f"p99 {latest.p99_ms:.1f} ms, CPU/request app {latest.app_cpu_us:.0f} µs"
                f"{collector}\n"
            )
    return {name: _median(values) for name, values in samples.items()}


def _median(samples: Sequence[Sample]) -> Sample:
    collector = [s.collector_cpu_us for s in samples if s.collector_cpu_us is not None]
    return Sample(
        statistics.median(s.rate for s in samples),
        statistics.median(s.p99_ms for s in samples),
        statistics.median(s.app_cpu_us for s in samples),
        statistics.median(collector) if collector else None,
    )


def _results(scenario: Scenario, medians: dict[str, Sample]) -> list[Result]:
    bare = medians[BARE.name]
    results = []
    for variant in scenario.variants[1:]:
        sample = medians[variant.name]
        ratio = sample.rate / bare.rate
        latency = sample.p99_ms / bare.p99_ms
        if variant.target:
            rate_target = f"≥ {THROUGHPUT_TARGET}× (goal {THROUGHPUT_GOAL}×)"
            latency_target = f"≤ {LATENCY_TARGET}×"
        elif variant.collector is not None:
            rate_target = latency_target = "(information)"
        else:
            rate_target = latency_target = "(comparison)"
        # Targets hold for the pinned server; unpinned, the figures are for comparison.
        held = variant.target and scenario.pinned
        results += [
            Result(
                f"HTTP {scenario.title}: {variant.label}",
                variant.name,
                sample.rate,
                "bare app",
                bare.rate,
                "req/s",
                rate_target if scenario.pinned else "(information)",
                ratio >= THROUGHPUT_TARGET if held else True,
            ),
            Result(
                f"HTTP {scenario.title}, p99 latency: {variant.label}",
                variant.name,
                sample.p99_ms,
                "bare app",
                bare.p99_ms,
                "ms",
                latency_target,
                latency <= LATENCY_TARGET if variant.target else True,
            ),
            Result(
                f"HTTP {scenario.title}, app server CPU per request: {variant.label}",
                variant.name,
                sample.app_cpu_us,
                "bare app",
                bare.app_cpu_us,
                "µs",
                "(information)",
                True,
            ),
        ]
        if sample.collector_cpu_us is not None:
            results.append(
                Result(
                    f"HTTP {scenario.title}, collector CPU per request: {variant.label}",
                    "collector process",
                    sample.collector_cpu_us,
                    "",
                    0.0,
                    "µs",
                    "(information)",
                    True,
                )
            )
    return results


def run(quick: bool) -> list[Result]:
    if not shutil.which("wrk") or not shutil.which("taskset"):
        raise RuntimeError("needs wrk and taskset: apt-get install wrk util-linux")
    rounds, seconds = (1, 3) if quick else (3, 5)
    environment = _clean_environment()
    results = []
    with _serve("upstream", environment, core=1) as (upstream, _):
        environment["BENCH_UPSTREAM"] = upstream
        for scenario in SCENARIOS:
            results += _results(scenario, _measure(scenario, rounds, seconds, environment))
    return results


if __name__ == "__main__":
    from bench.common import main_for

    main_for(run)
