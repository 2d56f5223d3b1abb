"""Requests per second and p99 latency of a FastAPI app under wrk: bare, with Watchkeeper, OTel,
prometheus-fastapi-instrumentator.

The server runs pinned to core 0 and wrk to core 1 (``taskset``); variants are interleaved
over rounds and the median per variant is compared with the bare app of the same run. Two
scenarios run on uvicorn's defaults; the production one on ``--loop uvloop --http httptools``
with a path-parameter route, as apps are deployed.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx

from bench.common import Result

VARIANTS = ("bare", "watchkeeper", "opentelemetry", "prometheus")
LABELS = {
    "watchkeeper": "Watchkeeper",
    "opentelemetry": "opentelemetry-instrumentation-fastapi",
    "prometheus": "prometheus-fastapi-instrumentator",
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


PRODUCTION_SERVER = ("--loop", "uvloop", "--http", "httptools")


@dataclass(frozen=True)
class Scenario:
    path: str
    title: str
    server_options: tuple[str, ...] = ()


SCENARIOS = (
    Scenario("/hello", "hello world"),
    Scenario("/call", "one httpx call"),
    Scenario("/items/42", "path parameter, uvloop + httptools", PRODUCTION_SERVER),
)


@dataclass(frozen=True)
class Sample:
    rate: float
    p99_ms: float


def _serve(
    factory: str,
    port: int,
    core: int,
    environment: dict[str, str],
    server_options: tuple[str, ...] = (),
) -> subprocess.Popen[bytes]:
    command = [
        "taskset",
        "-c",
        str(core),
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
        *server_options,
    ]
    process = subprocess.Popen(command, env=environment)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"the {factory} app did not start")


def _wrk(url: str, seconds: int) -> Sample:
    output = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", "-c32", "--latency", f"-d{seconds}s", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    if rate is None or p99 is None:
        raise RuntimeError(f"wrk printed no rate or p99:\n{output}")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return Sample(float(rate.group(1)), float(p99.group(1)) * scale)


def _measure(
    scenario: Scenario, rounds: int, seconds: int, environment: dict[str, str]
) -> dict[str, Sample]:
    samples: dict[str, list[Sample]] = {variant: [] for variant in VARIANTS}
    for _ in range(rounds):
        for variant in VARIANTS:
            port = _free_port()
            server = _serve(variant, port, 0, environment, scenario.server_options)
            try:
                url = f"http://127.0.0.1:{port}{scenario.path}"
                _wrk(url, 1)  # warm-up
                samples[variant].append(_wrk(url, seconds))
            finally:
                server.terminate()
                server.wait(30)
            latest = samples[variant][-1]
            sys.stderr.write(
                f"  {scenario.path} {variant}: {latest.rate:,.0f} req/s, p99 {latest.p99_ms:.1f} ms\n"
            )
    return {
        variant: Sample(
            statistics.median(sample.rate for sample in values),
            statistics.median(sample.p99_ms for sample in values),
        )
        for variant, values in samples.items()
    }


def run(quick: bool) -> list[Result]:
    if not shutil.which("wrk") or not shutil.which("taskset"):
        raise RuntimeError("needs wrk and taskset: apt-get install wrk util-linux")
    rounds, seconds = (1, 3) if quick else (3, 5)
    environment = dict(os.environ)
    upstream_port = _free_port()
    upstream = _serve("upstream", upstream_port, 1, environment)
    environment["BENCH_UPSTREAM"] = f"http://127.0.0.1:{upstream_port}"
    results = []
    try:
        for scenario in SCENARIOS:
            medians = _measure(scenario, rounds, seconds, environment)
            bare = medians["bare"]
            for variant in VARIANTS[1:]:
                ours = variant == "watchkeeper"
                label = LABELS[variant]
                results.append(
                    Result(
                        f"HTTP {scenario.title}: {label}",
                        label,
                        medians[variant].rate,
                        "bare app",
                        bare.rate,
                        "req/s",
                        "≥ 0.95×" if ours else "(comparison)",
                        medians[variant].rate / bare.rate >= 0.95 if ours else True,
                    )
                )
                results.append(
                    Result(
                        f"HTTP {scenario.title}, p99 latency: {label}",
                        label,
                        medians[variant].p99_ms,
                        "bare app",
                        bare.p99_ms,
                        "ms",
                        "(information)",
                        True,
                    )
                )
    finally:
        upstream.terminate()
        upstream.wait(30)
    return results


if __name__ == "__main__":
    from bench.common import main_for

    main_for(run)
