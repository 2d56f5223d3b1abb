"""``watchkeeper tail PATH…``: follow log files into the store until stopped."""

from __future__ import annotations

import re
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from watchkeeper.config import load_settings
from watchkeeper.logs.tail.offsets import Offsets
from watchkeeper.logs.tail.tailer import Tailer
from watchkeeper.recording.recorder import Recorder
from watchkeeper.storage.factory import store_location
from watchkeeper.storage.handle import StoreHandle


def command(
    paths: Annotated[list[Path], typer.Argument(help="Log files to follow.")],
    pattern: Annotated[
        str | None,
        typer.Option(
            help="Regular expression for your own format, tried first: named groups time, "
            "level, logger and message, others become attributes. Default: "
            "WATCHKEEPER_TAIL_PATTERN."
        ),
    ] = None,
    from_end: Annotated[
        bool,
        typer.Option(help="Start a file never read before at its end rather than its start."),
    ] = False,
    once: Annotated[bool, typer.Option(help="Record what the files hold now, then exit.")] = False,
) -> None:
    """Follow log files (rotation and truncation safe) into the store, resuming where it
    stopped: JSON lines, Python logging's formats, uvicorn's, or your own pattern."""
    overrides = {"tail_pattern": pattern} if pattern is not None else {}
    # This process writes the store itself: a tail is a writer of its own, like a collector.
    settings = load_settings(collector="off", **overrides)
    compiled = re.compile(settings.tail_pattern) if settings.tail_pattern else None
    stores = StoreHandle(settings)
    stores.open_in_background()
    recorder = Recorder(settings, sink=stores).start()
    tailer = Tailer(
        recorder, list(paths), Offsets(settings.tail_state_directory), compiled, from_end
    )
    typer.echo(f"Store: {store_location(settings).description}")
    typer.echo(f"Offsets kept in: {settings.tail_state_directory}")
    try:
        if once:
            tailer.drain()
        else:
            stop = threading.Event()

            def stop_on_signal(number: int, frame: FrameType | None) -> None:
                stop.set()

            signal.signal(signal.SIGTERM, stop_on_signal)
            signal.signal(signal.SIGINT, stop_on_signal)
            typer.echo("Following " + ", ".join(str(path) for path in paths) + " (Ctrl-C stops)")
            tailer.run(stop)
    finally:
        recorder.stop()
        stores.close()
    typer.echo(f"Read {tailer.counts.lines} lines into {tailer.counts.records} records.")
