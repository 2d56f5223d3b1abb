"""Work its caller cancelled is recorded as cancelled, kept so by the store, and never an error."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from watchkeeper.config import load_settings
from watchkeeper.model.events import SpanKind
from watchkeeper.model.query import Scope, TimeRange
from watchkeeper.recording.recorder import Recorder
from watchkeeper.storage.factory import open_store
from watchkeeper.storage.handle import StoreHandle


def test_cancelled_work_is_stored_as_cancelled_and_counted_as_no_error(tmp_path: Path) -> None:
    path = tmp_path / "cancelled.db"
    settings = load_settings(sqlite_path=path, flush_interval=0.02, raise_internal_errors=True)
    recorder = Recorder(settings, sink=StoreHandle(settings)).start()

    async def client_goes_away() -> None:
        waiting = asyncio.Event()

        async def call() -> None:
            with recorder.span("openai", SpanKind.INTEGRATION, "chat"):
                waiting.set()
                await asyncio.sleep(60)

        task = asyncio.create_task(call())
        await waiting.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        asyncio.run(client_goes_away())
        with pytest.raises(TimeoutError), recorder.span("openai", SpanKind.INTEGRATION, "chat"):
            raise TimeoutError("the provider did not answer in time")
        assert recorder.flush(timeout=30)
        # What health and the live feed judge the integration by.
        (live,) = recorder.live.window(60)
        assert (live.name, live.count, live.errors) == ("openai", 2, 1)
    finally:
        recorder.stop()

    store = open_store(load_settings(sqlite_path=path))
    try:
        last_hour = TimeRange.last(timedelta(hours=1))
        stored = store.spans(last_hour, Scope.everything()).items
        assert sorted((span.status, span.error_type) for span in stored) == [
            ("cancelled", None),
            ("error", "TimeoutError"),
        ]
        (summary,) = store.overview(last_hour, Scope.everything())
        assert (summary.count, summary.errors) == (2, 1)
        (group,) = store.error_groups(last_hour, Scope.everything())
        assert (group.error_type, group.count) == ("TimeoutError", 1)
    finally:
        store.close()
