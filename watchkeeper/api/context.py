"""What every route needs: the store, the settings, and (in-process) the recorder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from watchkeeper.config import Settings
from watchkeeper.health.thresholds import ThresholdBook
from watchkeeper.model.json import JsonValue
from watchkeeper.model.store import Store
from watchkeeper.recording.recorder import Recorder
from watchkeeper.redaction import redact_settings
from watchkeeper.storage.handle import StoreHandle


@dataclass(frozen=True)
class ApiContext:
    stores: StoreHandle
    settings: Settings
    recorder: Recorder | None
    thresholds: ThresholdBook
    configuration: Callable[[], dict[str, JsonValue]]
    """The effective configuration, secrets masked (health's, with its extra sections)."""

    @classmethod
    def build(
        cls,
        stores: StoreHandle,
        settings: Settings,
        recorder: Recorder | None,
        configuration: Callable[[], dict[str, JsonValue]] | None = None,
    ) -> ApiContext:
        shown = configuration or partial(redact_settings, settings)
        return cls(stores, settings, recorder, ThresholdBook.from_settings(settings), shown)

    @property
    def store(self) -> Store:
        """The open store; :class:`StoreUnavailable` (a 503) while it cannot be reached."""
        return self.stores.current()
