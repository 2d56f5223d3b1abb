"""What every benchmark shares: a result row, machine facts, realistic spans, fresh stores."""

from __future__ import annotations

import os
import platform
import random
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from watchkeeper.config import Settings, load_settings
from watchkeeper.model.events import Span, SpanKind, SpanStatus
from watchkeeper.model.ids import new_span_id, new_trace_id

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
NAMES = [f"GET /api/route-{index}" for index in range(16)] + [
    "openai",
    "elevenlabs",
    "pinecone",
    "astrology-api",
]


@dataclass(frozen=True)
class Result:
    benchmark: str
    ours_label: str
    ours: float
    baseline_label: str
    baseline: float
    unit: str
    target: str
    met: bool

    @property
    def ratio(self) -> float:
        return self.ours / self.baseline if self.baseline else float("nan")


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def realistic_spans(
    count: int, seed: int = 1, start: float | None = None, spread: float = 60.0
) -> list[Span]:
    """~20 names, ~1000 users, 5 orgs, 100 sessions; a fifth are LLM calls with tokens and cost."""
    rng = random.Random(seed)
    origin = time.time() - spread if start is None else start
    spans = []
    for index in range(count):
        name = NAMES[index % len(NAMES)]
        integration = name in ("openai", "elevenlabs", "pinecone", "astrology-api")
        span = Span(
            SpanKind.INTEGRATION if integration else SpanKind.REQUEST,
            name,
            origin + spread * index / count,
            rng.lognormvariate(-3, 0.8),
            new_trace_id(),
            new_span_id(),
            status=SpanStatus.ERROR if rng.random() < 0.02 else SpanStatus.OK,
            user_id=f"user-{rng.randrange(1000)}",
            org_id=f"org-{rng.randrange(5)}",
            session_id=f"session-{rng.randrange(100)}",
            attributes={"method": "GET", "status_code": 200} if not integration else None,
        )
        if name == "openai":
            span.model = "gpt-4o-mini"
            span.input_tokens, span.output_tokens, span.cost = 420, 180, 0.00017
        spans.append(span)
    return spans


@contextmanager
def sqlite_settings(**overrides: object) -> Iterator[Settings]:
    with tempfile.TemporaryDirectory(prefix="watchkeeper-bench-") as directory:
        yield load_settings(sqlite_path=Path(directory) / "bench.db", **overrides)


@contextmanager
def postgres_settings(**overrides: object) -> Iterator[Settings]:
    schema = f"wk_bench_{secrets.token_hex(4)}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield load_settings(database_url=POSTGRES_URL, database_schema=schema, **overrides)
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


def postgres_available() -> bool:
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def main_for(run: Callable[[bool], list[Result]]) -> None:
    """Run one benchmark alone (``python -m bench.<name> [--quick]``) and print its rows."""
    quick = "--quick" in sys.argv[1:]
    for result in run(quick):
        ratio = f"{result.ratio:.3f}×" if result.baseline else "–"
        verdict = "met" if result.met else "MISSED"
        print(
            f"{result.benchmark}: {result.ours_label} {result.ours:,.3f} {result.unit} | "
            f"{result.baseline_label} {result.baseline:,.3f} {result.unit} | {ratio} | "
            f"target {result.target}: {verdict}"
        )
