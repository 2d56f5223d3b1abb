"""Run the demo: the app on a local port, the traffic against it, a progress line, a clean stop."""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from dataclasses import dataclass

import uvicorn
from rich.console import Console
from rich.live import Live

from watchkeeper.config import Settings, load_settings
from watchkeeper.demo.app import build_app, logger
from watchkeeper.demo.services import FaultSchedule
from watchkeeper.demo.traffic import TrafficStats, drive
from watchkeeper.logging import JsonFormatter
from watchkeeper.storage.factory import store_location
from watchkeeper.testing.fake_ai import FakeAIServer


@dataclass(frozen=True)
class DemoOptions:
    duration: float | None = None
    rate: float = 4.0
    port: int = 8000
    traffic: bool = True
    cycle_seconds: float = 90.0


def demo_settings() -> tuple[Settings, str]:
    """Settings from the environment, with a fresh API key unless keys were given."""
    base = load_settings()
    if base.api_keys or base.open_access:
        key = base.api_keys[0].get_secret_value() if base.api_keys else "(open access)"
        return base, key
    key = secrets.token_urlsafe(18)
    sqlite_path = (
        base.sqlite_path
        if base.sqlite_path.name != "watchkeeper.db"
        else base.sqlite_path.with_name("watchkeeper-demo.db")
    )
    return load_settings(api_keys=[key], sqlite_path=sqlite_path, service="guidance-demo"), key


def run_demo(options: DemoOptions, console: Console | None = None) -> TrafficStats:
    console = console or Console()
    settings, key = demo_settings()
    # The LLM is a local OpenAI-compatible server with realistic latency and token streaming.
    llm = FakeAIServer(seed=3, latency=0.15, token_interval=0.004, jitter=0.5, output_tokens=60)
    llm.start()
    app, recorder = build_app(
        settings, llm.openai_base_url, FaultSchedule(cycle_seconds=options.cycle_seconds)
    )
    # The app's own log, as JSON lines in a file (the terminal shows the progress line): what
    # `watchkeeper tail` could follow, while instrument() records the same records directly.
    log_file = settings.sqlite_path.with_suffix(".log")
    app_log = logging.FileHandler(log_file, encoding="utf-8")
    app_log.setFormatter(JsonFormatter())
    logger.addHandler(app_log)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=options.port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the demo app could not start on port {options.port}; try --port")
        time.sleep(0.05)
    base_url = f"http://127.0.0.1:{options.port}"
    console.print(f"[bold]Watchkeeper demo[/] — store: {store_location(settings).description}")
    # Soft wrap: a key or a path broken over two lines cannot be copied whole.
    console.print(
        f"Dashboard: [link]{base_url}/watchkeeper/[/link]   API key: [bold]{key}[/]",
        soft_wrap=True,
    )
    console.print(f"The app's log (JSON lines): {log_file}", soft_wrap=True)
    console.print(
        "Press Ctrl-C to stop."
        if options.duration is None
        else f"Running for {options.duration:g} s."
    )
    stats = TrafficStats()
    try:
        if options.traffic:
            asyncio.run(_with_progress(base_url, options, stats, console))
        else:
            _wait(options.duration)
    except KeyboardInterrupt:
        console.print("\nStopping …")
    finally:
        server.should_exit = True
        thread.join(20)
        llm.stop()
        logger.removeHandler(app_log)
        app_log.close()
    flushed = recorder.stats()
    # A collector acknowledges what it has written: shipped events are stored ones.
    stored = flushed.flushed + flushed.shipped
    console.print(
        f"Done: {stats.sent} requests in {stats.sessions} sessions; "
        f"{stored} events stored, {flushed.dropped_total} dropped."
    )
    return stats


async def _with_progress(
    base_url: str, options: DemoOptions, stats: TrafficStats, console: Console
) -> None:
    traffic = asyncio.create_task(drive(base_url, options.rate, options.duration, stats))
    with Live(console=console, refresh_per_second=4, transient=True) as live:
        while not traffic.done():
            live.update(
                f"requests {stats.sent} (ok {stats.ok}, failed {stats.failed}) · "
                f"sessions {stats.sessions} · {stats.rate:.1f} req/s"
            )
            await asyncio.sleep(0.25)
    await traffic


def _wait(duration: float | None) -> None:
    end = None if duration is None else time.monotonic() + duration
    while end is None or time.monotonic() < end:
        time.sleep(0.2)
