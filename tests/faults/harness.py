"""Steady load on a real uvicorn server while the test makes Watchkeeper's store sick.

Afterwards every run checks the same promises: the app served every request, every request is
stored or counted as dropped, readiness never followed the monitoring store, and the writer
recovered by itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI

import watchkeeper
from tests.support.server import LiveServer
from tests.support.waiting import wait_until
from watchkeeper.config import Settings, load_settings
from watchkeeper.model.events import SpanKind
from watchkeeper.model.query import Scope, TimeRange
from watchkeeper.recording.default import set_recorder
from watchkeeper.runtime.runtime import Runtime
from watchkeeper.storage.factory import open_store

STORE_TIMEOUT = 1.0
"""Small, so a stuck call is abandoned within seconds (the deadline is twice this)."""
REQUEST_NAME = "GET /work/{number}"


@dataclass
class Load:
    """Requests sent without pause by one client, and readiness asked alongside."""

    url: str
    sent: int = 0
    failed: int = 0
    readiness: list[int] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as client:
            while not self.stop.is_set():
                response = client.get(f"/work/{self.sent}")
                if response.status_code == 200:
                    self.sent += 1
                else:
                    self.failed += 1
                if self.sent % 20 == 0:
                    self.readiness.append(client.get("/health/ready").status_code)


def fault_settings(**overrides: Any) -> Settings:
    defaults: dict[str, Any] = {
        "store_timeout": STORE_TIMEOUT,
        "flush_interval": 0.1,
        "batch_size": 200,
    }
    return load_settings(**{**defaults, **overrides})


def run_under_load(
    settings: Settings, fault_and_heal: Callable[[Runtime, Load], None]
) -> tuple[Runtime, Load]:
    """Serve, send, make the store sick and heal it (``fault_and_heal``), send more, flush."""
    app = FastAPI()

    @app.get("/work/{number}")
    async def work(number: int) -> dict[str, int]:
        return {"number": number}

    runtime = watchkeeper.instrument(app, settings, outbound=False)
    server = LiveServer(app).start()
    load = Load(server.url)
    sender = threading.Thread(target=load.run)
    try:
        sender.start()
        wait_until(lambda: load.sent >= 100, timeout=60, what="100 requests before the fault")
        wait_until(lambda: runtime.recorder.stats().flushed >= 50, what="the first writes")
        fault_and_heal(runtime, load)
        healed_at = load.sent
        wait_until(lambda: load.sent >= healed_at + 300, timeout=120, what="requests after healing")
        load.stop.set()
        sender.join(timeout=60)
        caught_up = runtime.recorder.flush(timeout=120)
        assert caught_up, (
            f"the recorder never caught up: {runtime.recorder.stats()}, "
            f"abandoned store calls {runtime.stores.stuck_calls}"
        )
    finally:
        load.stop.set()
        server.stop()
        set_recorder(None)
    return runtime, load


def stored_requests(settings: Settings) -> int:
    store = open_store(settings)
    try:
        summaries = store.overview(
            TimeRange.last(timedelta(hours=1)), Scope.everything(), SpanKind.REQUEST
        )
    finally:
        store.close()
    return sum(summary.count for summary in summaries if summary.name == REQUEST_NAME)


def accounted(fault: str, runtime: Runtime, load: Load, stored: int) -> None:
    stats = runtime.recorder.stats()
    dropped = stats.dropped_total
    # The figures docs/reliability.md quotes: run with -s to see them.
    print(
        f"\n{fault}: sent {load.sent}, stored {stored}, dropped {dropped}, "
        f"failed writes {stats.store_failures}, abandoned calls {runtime.stores.stuck_calls}, "
        f"readiness answers {sorted(set(load.readiness))}"
    )
    assert load.failed == 0, "the app failed requests because its monitoring store was sick"
    assert stored + dropped == load.sent
    assert set(load.readiness) == {200}, "readiness followed the monitoring store"
