"""The runtime: one store, one recorder, the callers' authentication, and components.

``watchkeeper.instrument(app)``, ``watchkeeper serve``, the demo and the CLI all build one. It is
started and stopped in one place, the ASGI lifespan (inside a host app, through the request
middleware's :class:`~watchkeeper.runtime.guest.Guest`), and never takes over signal handlers:
the flush at shutdown runs after the server has drained the requests in flight.
"""

from __future__ import annotations

import asyncio
import atexit
import gc
import logging
from collections.abc import AsyncIterator, MutableMapping, Sequence
from contextlib import asynccontextmanager
from functools import cached_property
from typing import Any

from fastapi import FastAPI
from starlette.routing import BaseRoute

from watchkeeper._version import __version__
from watchkeeper.access.control import AccessControl
from watchkeeper.access.deployment import SettingsAudit
from watchkeeper.alerts.component import AlertsComponent
from watchkeeper.api.app import API_PREFIX, ApiComponent
from watchkeeper.api.context import ApiContext
from watchkeeper.api.errors import install_error_handlers
from watchkeeper.collector.connect import RemoteCollector
from watchkeeper.collector.intake import IntakeComponent
from watchkeeper.collector.local import LocalCollector, LocalPaths, http_socket_for
from watchkeeper.collector.proxy import CollectorProxy
from watchkeeper.config import Settings, load_settings, parse_address
from watchkeeper.dashboard.router import DashboardComponent
from watchkeeper.health.circuits import CircuitStateProvider
from watchkeeper.health.probes import ProbeRegistry
from watchkeeper.health.router import HealthComponent
from watchkeeper.health.system import SystemSampler
from watchkeeper.instrumentation.guest import ROOT_PATHS, Guest, paths_the_host_serves
from watchkeeper.instrumentation.pricing import install_pricing
from watchkeeper.logs.capture import LogCaptureComponent
from watchkeeper.logs.tail.component import TailComponent
from watchkeeper.metrics.endpoint import MetricsComponent
from watchkeeper.model.store import Store
from watchkeeper.otlp import otlp_component, otlp_exporter
from watchkeeper.recording.default import get_recorder, set_recorder
from watchkeeper.recording.recorder import Recorder
from watchkeeper.resilience.component import ResilienceComponent
from watchkeeper.runtime.component import Component
from watchkeeper.runtime.retention import RetentionJob
from watchkeeper.storage.handle import StoreHandle

logger = logging.getLogger("watchkeeper")

DEFAULT_PREFIX = "/watchkeeper"
FIRST_OPEN_WAIT_SECONDS = 1.0


class Runtime:
    """Everything Watchkeeper runs, for one process.

    Health is always served; the API, dashboard and ``/metrics`` only once API keys are set or
    access is opened, since they show recorded data (``/metrics`` also when its protection is
    turned off, which opens it to scrapers without a key). ``standalone`` is ``watchkeeper serve``:
    Watchkeeper's application is the whole server, its dashboard at the root, and the live feed
    polls the store the apps write into.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        recorder: Recorder | None = None,
        store: Store | None = None,
        prefix: str = DEFAULT_PREFIX,
        serve: bool = True,
        standalone: bool = False,
        probes: ProbeRegistry | None = None,
        sampler: SystemSampler | None = None,
        circuits: CircuitStateProvider | None = None,
        version: str | None = None,
        ship: bool = False,
        capture_logs: bool = False,
    ) -> None:
        self.settings = settings or (recorder.settings if recorder is not None else load_settings())
        sink = recorder.sink if recorder is not None else None
        self.stores = sink if isinstance(sink, StoreHandle) else StoreHandle(self.settings, store)
        self.prefix = "" if standalone else prefix.rstrip("/")
        self._collector: LocalCollector | RemoteCollector | None = None
        self._proxy: CollectorProxy | None = None
        if recorder is None and ship:
            self._collector = self._find_collector()
        self.recorder = recorder or Recorder(
            self.settings, sink=self.stores, collector=self._collector
        )
        self.standalone = standalone
        self.components: list[Component] = []
        probes = probes or ProbeRegistry()
        # Keys, roles, dashboard sessions, rate limits and the audit log: wherever the API is.
        # Standalone, the API and dashboard are the point: without a key it refuses to start.
        self.access = self._access_control() if serve else None
        # Resilience guards the app's own calls: `watchkeeper serve` makes none.
        self.resilience: ResilienceComponent | None = None
        if not standalone:
            self.resilience = ResilienceComponent(
                self.settings,
                self.recorder,
                probes,
                self.access.guard if self.access is not None else None,
                self.prefix + API_PREFIX,
            )
        self.health = HealthComponent(
            self.recorder,
            self.settings,
            probes,
            sampler,
            circuits or self.resilience,
            version,
            self.prefix,
            self.access.auth if self.access is not None else None,
        )
        self.add(self.health)
        if self.resilience is not None:
            self.health.monitor.sections["resilience"] = self.resilience.configuration
            self.add(self.resilience)
        self.api: ApiComponent | None = None
        self.metrics: MetricsComponent | None = None
        if self.access is not None:
            # Standalone, the server's recorder holds only its own figures, not the apps'.
            in_process = None if standalone else self.recorder
            context = ApiContext.build(
                self.stores, self.settings, in_process, self.health.monitor.configuration
            )
            self.api = ApiComponent(context, self.access, self.prefix, poll_store=standalone)
            self.metrics = MetricsComponent(self.recorder, self.settings)
            self.add(self.api)
            if self.resilience is not None:
                self.resilience.publish = self.api.hub.publish
            self.add(DashboardComponent(self.prefix))
            self.add(self.metrics)
        elif serve and not self.settings.protect_metrics:
            # WATCHKEEPER_PROTECT_METRICS=false opens /metrics to scrapers: no key is needed.
            self.metrics = MetricsComponent(self.recorder, self.settings)
            self.add(self.metrics)
            logger.info(
                "Watchkeeper: set WATCHKEEPER_API_KEYS to serve the dashboard and API, and "
                "health's figures and configuration (health's statuses and /metrics are "
                "served already)."
            )
        elif serve:
            logger.info(
                "Watchkeeper: set WATCHKEEPER_API_KEYS to serve the dashboard, API, /metrics, "
                "and health's figures and configuration (health's statuses are served already)."
            )
        # OTLP ingest: served wherever a key can reach it, ingest-only keys included.
        can_ingest = (
            self.settings.api_keys or self.settings.ingest_keys or self.settings.open_access
        )
        if serve and self.settings.otlp_ingest and (can_ingest or standalone):
            otlp = otlp_component(self.recorder, self.settings, self.prefix, self.access)
            if otlp is not None:
                self.add(otlp)
        # The app's own logging records (inside an app only: a collector's or a server's
        # logging is Watchkeeper's).
        if capture_logs and self.settings.log_capture and self.settings.enabled:
            self.add(LogCaptureComponent(self.recorder, self.settings))
        # In every process that opens the store: the audit of its settings, retention runs
        # (replicas take turns), and alerts (one evaluates at a time, under a lease).
        self.alerts = self._store_writer_components()
        # OTLP export: every recorded span, also to another backend; closed after the last flush.
        self.exporter = otlp_exporter(self.recorder, self.settings)
        self._started = False
        self._starting = asyncio.Lock()

    def _store_writer_components(self) -> AlertsComponent | None:
        """What runs in each process that writes the store: the audit of the settings changed
        since the last run, the periodic retention run, and alerts (returned, when on)."""
        if not self.settings.enabled or self.ships:
            return None
        self.add(SettingsAudit(self.settings, self.stores))
        self.add(RetentionJob(self.settings, self.stores))
        if not self.settings.alerts:
            return None
        alerts = AlertsComponent(
            self.settings,
            self.stores.current,
            self.recorder.stats,
            self.access.guard if self.access is not None else None,
            self.prefix,
            self.prefix + API_PREFIX,
        )
        self.add(alerts)
        if self.metrics is not None:
            alerts.export_to(self.metrics.exporter.registry)
        return alerts

    def _access_control(self) -> AccessControl | None:
        if self.settings.api_keys or self.settings.open_access or self.standalone:
            return AccessControl.build(self.settings, self.stores)
        return None

    def _find_collector(self) -> LocalCollector | RemoteCollector | None:
        """The collector this app ships to, per WATCHKEEPER_COLLECTOR; ``None`` for none."""
        settings = self.settings
        if settings.collector == "off" or not settings.enabled:
            return None
        # Without a collector, this process opens the store and writes itself.
        fallback = self.stores.open_in_background
        if settings.collector == "auto":
            paths = LocalPaths.for_app(settings, self.prefix)
            self._proxy = CollectorProxy(paths.http, self._serve_here, self.prefix)
            return LocalCollector(settings, self.prefix, paths, fallback)
        address = parse_address(settings.collector)
        if address.path is not None:
            self._proxy = CollectorProxy(
                http_socket_for(address.path), self._serve_here, self.prefix
            )
        key = settings.collector_key
        return RemoteCollector(
            address,
            settings.service,
            settings.instance,
            key.get_secret_value() if key is not None else None,
            fallback,
        )

    @property
    def ships(self) -> bool:
        """Whether this process ships its events to a collector rather than writing them."""
        return self._collector is not None

    @property
    def probes(self) -> ProbeRegistry:
        """Where an app registers probes of its own dependencies."""
        return self.health.probes

    def add(self, component: Component) -> None:
        """Run ``component`` with the runtime; before its application is first used."""
        if "app" in self.__dict__:
            raise RuntimeError(
                f"cannot add the {component.name!r} component: Watchkeeper's application is "
                "already built; add components before the app starts serving"
            )
        self.components.append(component)

    @cached_property
    def app(self) -> FastAPI:
        """Watchkeeper's own application: every component's routes, its own error handlers."""
        own_docs = self.standalone
        app = FastAPI(
            title="Watchkeeper",
            version=__version__,
            description="Traces, costs and health of an AI application, recorded by Watchkeeper.",
            openapi_url="/openapi.json" if own_docs else f"{self.prefix}{API_PREFIX}/openapi.json",
            docs_url="/docs" if own_docs else None,
            redoc_url="/redoc" if own_docs else None,
            lifespan=self._lifespan if self.standalone else None,
        )
        install_error_handlers(app)
        for component in self.components:
            router = component.router()
            if router is not None:
                app.include_router(router)
        return app

    def guest(self, host_routes: Sequence[BaseRoute]) -> Guest:
        """What the request middleware needs to serve Watchkeeper inside a host app.

        ``host_routes`` is read when the runtime starts, so routes the host adds after
        ``instrument()`` still keep their paths: Watchkeeper never shadows a host's route.
        """

        async def start() -> None:
            taken = paths_the_host_serves(host_routes, ROOT_PATHS)
            if taken:
                logger.info(
                    "Watchkeeper leaves %s to the app's own routes; its own are under %s.",
                    ", ".join(sorted(taken)),
                    self.prefix,
                )
            guest.prefixes = (self.prefix, *(path for path in ROOT_PATHS if path not in taken))
            await self.start()

        # self.serve, not self.app: the application is built on first use, so components can
        # still be added between instrument() and the app's start.
        guest = Guest(self.serve, (self.prefix, *ROOT_PATHS), start, self.stop, self._host_started)
        return guest

    def _host_started(self) -> None:
        if self.settings.gc_freeze:
            # What is alive once the app has started (framework, models, the app's own
            # modules) lives for good: keeping it out of every full collection is what keeps
            # the collector's pauses short for the app's requests.
            gc.freeze()

    async def serve(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        """Watchkeeper's application as an ASGI callable: the collector's, when there is one."""
        proxy = self._proxy
        if proxy is not None:
            await proxy(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _serve_here(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    async def start(self) -> None:
        """Start recording and every component; the store opens in the background."""
        async with self._starting:
            if self._started:
                return
            self._started = True
            self.app  # noqa: B018 - built now: components cannot be added once running
            if not self.ships:
                self.stores.open_in_background()
                # A moment for the store to open, so the first API call finds it open; never
                # more, so a store that hangs cannot hold up the app's start.
                await asyncio.to_thread(self.stores.wait_first_attempt, FIRST_OPEN_WAIT_SECONDS)
            self.recorder.start()
            for component in self.components:
                try:
                    await component.start()
                except Exception:
                    # The host app must start whatever happens to a part of Watchkeeper.
                    logger.exception("Watchkeeper's %s could not start", component.name)

    async def stop(self) -> None:
        """Stop the components, flush what was recorded, close the store."""
        async with self._starting:
            if not self._started:
                return
            self._started = False
            for component in reversed(self.components):
                try:
                    await component.stop()
                except Exception:
                    logger.exception("Watchkeeper's %s did not stop cleanly", component.name)
            if isinstance(self._collector, LocalCollector):
                self._collector.close()
            # Off the loop: the flush may take seconds, and the server may still be answering.
            await asyncio.to_thread(self.recorder.stop)
            if self.exporter is not None:
                await asyncio.to_thread(self.exporter.close)
            self.stores.close()
            if self._proxy is not None:
                await self._proxy.aclose()

    @asynccontextmanager
    async def _lifespan(self, _: Any) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()


def configure(settings: Settings | None = None) -> Recorder:
    """Replace the process's recorder with one writing to the settings' store (stopping the old
    one); for scripts and workers outside a web app. Start it with ``.start()``."""
    effective = settings or load_settings()
    stores = StoreHandle(effective)
    stores.open_in_background()
    recorder = Recorder(effective, sink=stores)
    exporter = otlp_exporter(recorder, effective)
    if exporter is not None:
        # Exit hooks run last registered first: the recorder's (from start()) flushes, then
        # this one sends what that flush gave.
        atexit.register(exporter.close)
    previous = set_recorder(recorder)
    if previous is not None:
        previous.stop()
    return get_recorder()


def create_app(settings: Settings | None = None, *, store: Store | None = None) -> FastAPI:
    """``watchkeeper serve``'s application, for any ASGI server (``uvicorn --factory``).

    The dashboard, API, health and metrics over the settings' store, which the apps write into;
    with WATCHKEEPER_COLLECTOR_LISTEN, also a collector that apps ship their events to; with
    WATCHKEEPER_TAIL_PATHS, also the log files it follows into the store.
    """
    runtime = Runtime(settings, store=store, standalone=True)
    listen = runtime.settings.collector_listen
    if listen:
        addresses = [parse_address(text) for text in listen]
        runtime.add(IntakeComponent.from_settings(runtime.recorder, runtime.settings, addresses))
        install_pricing(runtime.recorder)
    if runtime.settings.tail_paths:
        runtime.add(TailComponent(runtime.recorder, runtime.settings))
    return runtime.app
