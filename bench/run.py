"""Run every benchmark side by side in one process and write bench/RESULTS.md.

python -m bench [--quick] [--only hot_path,app_side,ingest,queries,memory,http,otlp_ingest]
python bench/run.py [--quick] [--only ...]
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import (
    alert_eval,
    app_side,
    collector_ingest,
    hot_path,
    http_overhead,
    ingest,
    log_capture,
    memory,
    otlp_ingest,
    queries,
    resilience,
)
from bench.common import Result, machine

BENCHMARKS = {
    "hot_path": hot_path,
    "app_side": app_side,
    "ingest": ingest,
    "collector_ingest": collector_ingest,
    "queries": queries,
    "memory": memory,
    "http": http_overhead,
    "resilience": resilience,
    "otlp_ingest": otlp_ingest,
    "alert_eval": alert_eval,
    "log_capture": log_capture,
}


def _row(result: Result) -> str:
    ratio = f"{result.ratio:.2f}×" if result.baseline else "–"
    verdict = "met" if result.met else "MISSED"
    return (
        f"| {result.benchmark} | {result.ours_label}: {result.ours:,.2f} {result.unit} | "
        f"{result.baseline_label}: {result.baseline:,.2f} {result.unit} | {ratio} | "
        f"{result.target} | {verdict} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a quick look")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated names")
    options = parser.parse_args()
    results: list[Result] = []
    for name in options.only.split(","):
        sys.stderr.write(f"running {name} …\n")
        try:
            results += BENCHMARKS[name].run(options.quick)
        except Exception as error:  # one broken benchmark must not lose the others' figures
            sys.stderr.write(f"{name} failed: {error!r}\n")
            results.append(Result(name, "failed", 0.0, str(error)[:80], 0.0, "", "", False))
    header = [
        "| benchmark | Watchkeeper | baseline (same run) | ratio | target | |",
        "|---|---|---|---|---|---|",
    ]
    table = "\n".join(header + [_row(result) for result in results])
    print(table)
    mode = "quick" if options.quick else "full"
    names = options.only.split(",")
    command = "python -m bench" + (" --quick" if options.quick else "")
    if set(names) != set(BENCHMARKS):
        command += f" --only {options.only}"
    section = (
        f"Machine: {machine()}  \nDate: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  \n"
        f"Command: `{command}` ({mode} sizes)\n\n" + table + "\n"
    )
    results_file = Path(__file__).with_name("RESULTS.md")
    if set(names) == set(BENCHMARKS) or not results_file.exists():
        results_file.write_text(
            "# Benchmark results\n\nEach row was measured in the same run as its baseline; "
            "absolute figures on a shared machine are noise, the ratios are the result.\n\n"
            + section
        )
    else:  # a partial run adds its own dated section instead of replacing the full one
        with results_file.open("a") as existing:
            existing.write("\n## " + ", ".join(names) + "\n\n" + section)


if __name__ == "__main__":
    main()
