"""A channel that keeps what it is sent, for tests (yours and Watchkeeper's own).

Configured like any channel (``{"kind": "recording"}``) it records in memory; it can be told to
fail or to hang, to check that a failing channel never holds evaluation up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from watchkeeper.alerts.notification import Delivery, Notification

RECORDING_KIND = "recording"


@dataclass
class RecordingChannel:
    name: str = "recording"
    fail: bool = False
    hang: bool = False
    sent: list[list[Notification]] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return RECORDING_KIND

    async def send(self, notifications: Sequence[Notification]) -> Delivery:
        if self.hang:
            await asyncio.Event().wait()
        if self.fail:
            return Delivery(self.name, False, 1, "the channel was told to fail")
        self.sent.append(list(notifications))
        return Delivery(self.name, True, 1)

    async def aclose(self) -> None:
        return None

    @property
    def notifications(self) -> list[Notification]:
        return [item for group in self.sent for item in group]
