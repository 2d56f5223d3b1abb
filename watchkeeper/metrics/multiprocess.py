"""Several worker processes (``uvicorn --workers N``) behind one ``/metrics``.

prometheus_client's multiprocess mode has every process write its metric values to files in a
shared directory, and the scrape (answered by any worker) merges all of them. The client picks
the storage for values when ``prometheus_client.values`` is imported, from the environment
variable ``PROMETHEUS_MULTIPROC_DIR``. :func:`enable_multiprocess` therefore exports the variable
and switches the already-imported client over, before Watchkeeper creates any metric.

Constraints for operators:

* every worker must see the same directory, so set ``WATCHKEEPER_METRICS_MULTIPROCESS_DIR`` (or
  ``PROMETHEUS_MULTIPROC_DIR``) in the environment of the server command, not in code that runs
  after the workers started;
* empty the directory before each server start (not from a worker): files of an earlier run would
  be merged into the new one;
* metrics that other libraries created in a process before the switch stay process-local.
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import CollectorRegistry, values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from watchkeeper.config import ConfigurationError, Settings

ENVIRONMENT_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_directory(settings: Settings) -> Path | None:
    """The shared directory, or ``None`` for single-process exposition."""
    directory = settings.metrics_multiprocess_dir
    if directory is None:
        exported = os.environ.get(ENVIRONMENT_VARIABLE)
        return Path(exported) if exported else None
    return directory


def enable_multiprocess(directory: Path) -> None:
    """Make this process write its metric values into ``directory``."""
    if not directory.is_dir():
        raise ConfigurationError(
            f"WATCHKEEPER_METRICS_MULTIPROCESS_DIR: {str(directory)!r} is not an existing "
            "directory; create it (empty) before starting the server"
        )
    exported = os.environ.get(ENVIRONMENT_VARIABLE)
    if exported and Path(exported).resolve() != directory.resolve():
        raise ConfigurationError(
            f"WATCHKEEPER_METRICS_MULTIPROCESS_DIR ({str(directory)!r}) differs from "
            f"{ENVIRONMENT_VARIABLE} ({exported!r}); set only one, or both to the same directory"
        )
    os.environ[ENVIRONMENT_VARIABLE] = str(directory)
    if values.ValueClass is values.MutexValue:
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def merged_registry(directory: Path) -> CollectorRegistry:
    """A registry whose exposition merges the values of every worker process."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return registry


def mark_worker_dead(directory: Path, pid: int | None = None) -> None:
    """Forget a stopped worker's live gauges (its counters keep counting in the merged totals)."""
    mark_process_dead(os.getpid() if pid is None else pid, str(directory))  # type: ignore[no-untyped-call]
