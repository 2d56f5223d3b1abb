"""The alerts component: the evaluator's loop where the store is written, and the API.

The runtime adds it to every process that opens the store (the collector, ``watchkeeper
serve``, an app recording in its own process); all of them may serve the API, and all of them
compete for the lease, so exactly one evaluates at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from fastapi import APIRouter
from prometheus_client import CollectorRegistry

from watchkeeper.alerts.configuration import AlertsConfiguration, load_configuration
from watchkeeper.alerts.evaluator import Evaluator
from watchkeeper.alerts.exposition import AlertsCollector
from watchkeeper.alerts.routes import alerts_routes
from watchkeeper.alerts.sql import AlertStore
from watchkeeper.config import Settings
from watchkeeper.model.errors import StoreUnavailable
from watchkeeper.model.store import Queries, Store
from watchkeeper.recording.stats import StatsSnapshot

logger = logging.getLogger("watchkeeper")


class AlertStores:
    """The alerts' view of the process's store, made once per store opened."""

    def __init__(self, current: Callable[[], Store]) -> None:
        self._current = current
        self._made: tuple[Store, AlertStore] | None = None

    def get(self) -> tuple[Queries, AlertStore]:
        """The store and its alerts' tables; :class:`StoreUnavailable` while none is open."""
        store = self._current()
        made = self._made
        if made is None or made[0] is not store:
            engine = getattr(store, "engine", None)
            if engine is None:
                raise StoreUnavailable("alerts need Watchkeeper's SQL store")
            made = (store, AlertStore(engine))
            self._made = made
        return made

    def get_or_none(self) -> tuple[Queries, AlertStore] | None:
        try:
            return self.get()
        except StoreUnavailable:
            return None


class AlertsComponent:
    name = "alerts"

    def __init__(
        self,
        settings: Settings,
        current_store: Callable[[], Store],
        recorder_stats: Callable[[], StatsSnapshot] | None,
        auth: Callable[..., object] | None,
        prefix: str,
        api_prefix: str,
        evaluate: bool = True,
        configuration: AlertsConfiguration | None = None,
    ) -> None:
        self.settings = settings
        self.stores = AlertStores(current_store)
        self.configuration = configuration or load_configuration(settings)
        self.evaluator = Evaluator(
            settings, self.configuration, self.stores.get_or_none, recorder_stats
        )
        self._evaluate = evaluate and settings.alerts
        self._router = alerts_routes(self, auth, prefix, api_prefix)
        self._loop: asyncio.Task[None] | None = None
        self._delivery: asyncio.Task[None] | None = None
        self.wake = asyncio.Event()

    def export_to(self, registry: CollectorRegistry) -> None:
        """Serve the open alerts as ``ALERTS`` from this registry's ``/metrics``."""
        registry.register(AlertsCollector(self.stores.get_or_none))

    def router(self) -> APIRouter | None:
        return self._router

    async def start(self) -> None:
        if self._evaluate:
            self._loop = asyncio.create_task(self._run(), name="watchkeeper-alerts")

    async def stop(self) -> None:
        for task in (self._loop, self._delivery):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._loop = self._delivery = None
        opened = self.stores.get_or_none()
        if opened is not None and self.evaluator.term is not None:
            with contextlib.suppress(StoreUnavailable):  # else it expires by itself
                await asyncio.to_thread(opened[1].release_lease, self.evaluator.holder)
        await self.evaluator.aclose()

    async def _run(self) -> None:
        settings = self.settings
        while True:
            held = False
            try:
                report = await asyncio.to_thread(self.evaluator.tick)
                held = report.held
                if held:
                    self._deliver_in_background()
            except StoreUnavailable as error:
                logger.debug("Watchkeeper: alerts not evaluated: %s", error)
            except Exception:
                logger.exception("Watchkeeper: an alert evaluation failed")
            # Not the holder: look again often enough to take over within one lease period.
            pause = (
                settings.alert_interval
                if held
                else min(settings.alert_interval, settings.alert_lease_seconds / 4)
            )
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), pause)

    def _deliver_in_background(self) -> None:
        """Send queued notifications unless a delivery is still going: it never delays a cycle."""
        if self._delivery is not None and not self._delivery.done():
            return
        opened = self.stores.get_or_none()
        if opened is None:
            return
        self._delivery = asyncio.create_task(self._deliver(opened[1]))

    async def _deliver(self, alerts: AlertStore) -> None:
        try:
            await self.evaluator.deliver(alerts)
        except StoreUnavailable as error:
            logger.debug("Watchkeeper: notifications not sent yet: %s", error)
        except Exception:
            logger.exception("Watchkeeper: sending alert notifications failed")
