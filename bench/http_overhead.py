"""Requests per second of a FastAPI app under wrk: bare, with Watchkeeper, OTel, instrumentator.

The server runs pinned to core 0 and wrk to core 1 (``taskset``); variants are interleaved
over rounds and the median per variant is compared with the bare app of the same run.
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


def _serve(
    factory: str, port: int, core: int, environment: dict[str, str]
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


def _wrk(url: str, seconds: int) -> float:
    output = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", "-c32", f"-d{seconds}s", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if match is None:
        raise RuntimeError(f"wrk printed no rate:\n{output}")
    return float(match.group(1))


def _measure(path: str, rounds: int, seconds: int, environment: dict[str, str]) -> dict[str, float]:
    samples: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    for _ in range(rounds):
        for variant in VARIANTS:
            port = _free_port()
            server = _serve(variant, port, 0, environment)
            try:
                url = f"http://127.0.0.1:{port}{path}"
                _wrk(url, 1)  # warm-up
                samples[variant].append(_wrk(url, seconds))
            finally:
                server.terminate()
                server.wait(30)
            sys.stderr.write(f"  {path} {variant}: {samples[variant][-1]:,.0f} req/s\n")
    return {variant: statistics.median(values) for variant, values in samples.items()}


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
        for path, title in (("/hello", "hello world"), ("/call", "one httpx call")):
            medians = _measure(path, rounds, seconds, environment)
            for variant in VARIANTS[1:]:
                ratio = medians[variant] / medians["bare"]
                target = "≥ 0.95×" if variant == "watchkeeper" else "(comparison)"
                met = ratio >= 0.95 if variant == "watchkeeper" else True
                results.append(
                    Result(
                        f"HTTP {title}: {LABELS[variant]}",
                        LABELS[variant],
                        medians[variant],
                        "bare app",
                        medians["bare"],
                        "req/s",
                        target,
                        met,
                    )
                )
    finally:
        upstream.terminate()
        upstream.wait(30)
    return results


if __name__ == "__main__":
    from bench.common import main_for

    main_for(run)
