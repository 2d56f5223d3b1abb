"""What every route needs: the store, the settings, and (in-process) the recorder."""

from __future__ import annotations

from dataclasses import dataclass

from watchkeeper.config import Settings
from watchkeeper.health.thresholds import ThresholdBook
from watchkeeper.model.store import Store
from watchkeeper.recording.recorder import Recorder
from watchkeeper.storage.handle import StoreHandle


@dataclass(frozen=True)
class ApiContext:
    stores: StoreHandle
    settings: Settings
    recorder: Recorder | None
    thresholds: ThresholdBook

    @classmethod
    def build(
        cls, stores: StoreHandle, settings: Settings, recorder: Recorder | None
    ) -> ApiContext:
        return cls(stores, settings, recorder, ThresholdBook.from_settings(settings))

    @property
    def store(self) -> Store:
        """The open store; :class:`StoreUnavailable` (a 503) while it cannot be reached."""
        return self.stores.current()
