"""System and process figures, sampled on a daemon thread and published as gauges.

Sampling off the request path keeps ``/health`` cheap: psutil calls such as disk usage and open
file counts are system calls that can stall on a busy host. Each sample is also recorded as a
gauge (``system.*``) so it is stored alongside the app's own metrics.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import psutil

from watchkeeper.config import Settings
from watchkeeper.health.loop_lag import LoopLagMonitor
from watchkeeper.model.events import MetricKind
from watchkeeper.recording.recorder import Recorder


@dataclass(frozen=True, slots=True)
class SystemSnapshot:
    sampled_at: float
    process_started_at: float
    cpu_percent: float
    process_cpu_percent: float
    memory_used_bytes: int
    memory_available_bytes: int
    memory_percent: float
    disk_path: str
    disk_used_bytes: int
    disk_free_bytes: int
    disk_percent: float
    net_sent_bytes_per_second: float | None
    net_received_bytes_per_second: float | None
    process_rss_bytes: int
    open_fds: int | None
    open_files: int | None
    threads: int
    event_loop_lag_seconds: float | None

    def uptime_seconds(self, now: float | None = None) -> float:
        """Since the process started (not since Watchkeeper did), as orchestrators count it."""
        return (time.time() if now is None else now) - self.process_started_at


# Not published: identifiers and timestamps, not quantities a dashboard would chart.
_NOT_GAUGES = frozenset({"sampled_at", "process_started_at", "disk_path"})


def store_directory(settings: Settings) -> Path:
    """Where the store's data lives on this host: the SQLite file's directory, else the cwd."""
    if settings.sqlite_file is not None:
        directory = settings.sqlite_file.resolve().parent
        if directory.is_dir():
            return directory
    return Path.cwd()


class SystemSampler:
    def __init__(
        self,
        recorder: Recorder,
        settings: Settings | None = None,
        publish_gauges: bool = True,
    ) -> None:
        self._recorder = recorder
        effective = settings or recorder.settings
        self.interval = effective.system_sample_interval
        self.disk_path = store_directory(effective)
        self.publish_gauges = publish_gauges
        self.loop_lag = LoopLagMonitor()
        self._process = psutil.Process()
        self._started_at = float(self._process.create_time())
        self._latest: SystemSnapshot | None = None
        self._previous_net: tuple[float, int, int] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lag_task: concurrent.futures.Future[None] | None = None
        # The first cpu_percent call only sets a baseline; prime it so the first sample means
        # something.
        psutil.cpu_percent(interval=None)
        self._process.cpu_percent(interval=None)

    @property
    def latest(self) -> SystemSnapshot | None:
        return self._latest

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Start sampling; with ``loop``, also measure that loop's lag (the app's loop)."""
        if loop is not None and self._lag_task is None:
            self._lag_task = asyncio.run_coroutine_threadsafe(self.loop_lag.run(), loop)
        if self._thread is not None:
            return
        self._stop.clear()
        self.sample()
        self._thread = threading.Thread(
            target=self._run, name="watchkeeper-system-sampler", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._lag_task is not None:
            self._lag_task.cancel()
            self._lag_task = None
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sample()
            except Exception as error:
                self._recorder.report_internal_error("sampling system metrics", error)

    def sample(self) -> SystemSnapshot:
        now = time.time()
        memory = psutil.virtual_memory()
        disk = psutil.disk_usage(str(self.disk_path))
        process = self._process
        with process.oneshot():
            rss = int(process.memory_info().rss)
            threads = int(process.num_threads())
            process_cpu = float(process.cpu_percent(interval=None))
            open_fds = _optional(process.num_fds) if hasattr(process, "num_fds") else None
            open_files = _optional(lambda: len(process.open_files()))
        sent_rate, received_rate = self._network_rates(now)
        snapshot = SystemSnapshot(
            sampled_at=now,
            process_started_at=self._started_at,
            cpu_percent=float(psutil.cpu_percent(interval=None)),
            process_cpu_percent=process_cpu,
            memory_used_bytes=int(memory.used),
            memory_available_bytes=int(memory.available),
            memory_percent=float(memory.percent),
            disk_path=str(self.disk_path),
            disk_used_bytes=int(disk.used),
            disk_free_bytes=int(disk.free),
            disk_percent=float(disk.percent),
            net_sent_bytes_per_second=sent_rate,
            net_received_bytes_per_second=received_rate,
            process_rss_bytes=rss,
            open_fds=open_fds,
            open_files=open_files,
            threads=threads,
            event_loop_lag_seconds=self.loop_lag.take_worst(),
        )
        self._latest = snapshot
        if self.publish_gauges:
            self._publish(snapshot)
        return snapshot

    def _network_rates(self, now: float) -> tuple[float | None, float | None]:
        counters = psutil.net_io_counters()
        if counters is None:
            return None, None
        current = (now, int(counters.bytes_sent), int(counters.bytes_recv))
        previous, self._previous_net = self._previous_net, current
        if previous is None or now <= previous[0]:
            return None, None
        elapsed = now - previous[0]
        return (current[1] - previous[1]) / elapsed, (current[2] - previous[2]) / elapsed

    def _publish(self, snapshot: SystemSnapshot) -> None:
        for item in fields(snapshot):
            if item.name in _NOT_GAUGES:
                continue
            value = getattr(snapshot, item.name)
            if isinstance(value, int | float):
                self._recorder.metric(f"system.{item.name}", float(value), MetricKind.GAUGE)
        self._recorder.metric(
            "system.uptime_seconds", snapshot.uptime_seconds(snapshot.sampled_at), MetricKind.GAUGE
        )


def _optional(read: Callable[[], int]) -> int | None:
    # Some figures are refused on some platforms or to unprivileged users; leave them out.
    with contextlib.suppress(psutil.Error, OSError, NotImplementedError):
        return int(read())
    return None
