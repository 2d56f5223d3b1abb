"""What every route needs: the store, the settings, and (in-process) the recorder."""

from __future__ import annotations

from dataclasses import dataclass

from watchkeeper.config import Settings
from watchkeeper.health.thresholds import ThresholdBook
from watchkeeper.recording.recorder import Recorder
from watchkeeper.storage.base import Store


@dataclass(frozen=True)
class ApiContext:
    store: Store
    settings: Settings
    recorder: Recorder | None
    thresholds: ThresholdBook

    @classmethod
    def build(cls, store: Store, settings: Settings, recorder: Recorder | None) -> ApiContext:
        return cls(store, settings, recorder, ThresholdBook.from_settings(settings))
