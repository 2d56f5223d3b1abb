"""OpenTelemetry in and out: OTLP/HTTP trace ingest at ``/v1/traces`` (protobuf or JSON, gzip),
and the export of every recorded span to an OTLP/HTTP endpoint.

Their packages (``opentelemetry-proto``, the SDK and its OTLP exporter: the ``otlp`` extra) are
imported only when the runtime builds them, so an app without the extra imports nothing of them.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import TYPE_CHECKING

from watchkeeper.config import ConfigurationError, Settings
from watchkeeper.recording.recorder import Recorder

if TYPE_CHECKING:
    from watchkeeper.access.control import AccessControl
    from watchkeeper.otlp.component import OtlpComponent
    from watchkeeper.otlp.export import OtlpExporter

logger = logging.getLogger("watchkeeper")

REQUIRED_MODULES = ("opentelemetry.proto", "google.rpc.status_pb2")
EXPORT_MODULES = ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http")


def otlp_component(
    recorder: Recorder, settings: Settings, prefix: str, access: AccessControl | None = None
) -> OtlpComponent | None:
    """The ingest component, or ``None`` when the ``otlp`` extra is not installed.

    Ingest-only keys say that ingest is wanted: without the extra, that is a start-up error
    rather than an endpoint that silently is not there.
    """
    if not all(_installed(name) for name in REQUIRED_MODULES):
        if settings.ingest_keys:
            raise ConfigurationError(
                "WATCHKEEPER_INGEST_KEYS: OTLP ingest needs the otlp extra; install it with "
                "pip install 'watchkeeper[otlp]', or unset WATCHKEEPER_INGEST_KEYS."
            )
        logger.debug(
            "Watchkeeper: install watchkeeper[otlp] to accept OTLP traces, logs and metrics."
        )
        return None
    from watchkeeper.otlp.component import OtlpComponent  # noqa: PLC0415 - the optional extra

    return OtlpComponent.from_settings(recorder, settings, prefix, access)


def otlp_exporter(recorder: Recorder, settings: Settings) -> OtlpExporter | None:
    """The exporter ``WATCHKEEPER_OTLP_EXPORT_ENDPOINT`` asks for, observing the recorder's
    batches; ``None`` when it is unset. Without the extra, that setting is a start-up error."""
    if settings.otlp_export_endpoint is None:
        return None
    if not all(_installed(name) for name in EXPORT_MODULES):
        raise ConfigurationError(
            "WATCHKEEPER_OTLP_EXPORT_ENDPOINT: exporting spans needs the otlp extra; install it "
            "with pip install 'watchkeeper[otlp]', or unset WATCHKEEPER_OTLP_EXPORT_ENDPOINT."
        )
    from watchkeeper.otlp.export import OtlpExporter  # noqa: PLC0415 - the optional extra

    exporter = OtlpExporter(recorder, settings)
    recorder.observers.append(exporter)
    return exporter


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False
