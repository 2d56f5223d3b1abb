"""OpenTelemetry in: OTLP/HTTP trace ingest at ``/v1/traces`` (protobuf or JSON, gzip).

Its messages come from ``opentelemetry-proto`` (the ``otlp`` extra), imported only when the
component is built, so an app without the extra imports nothing of it.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import TYPE_CHECKING

from watchkeeper.config import ConfigurationError, Settings
from watchkeeper.recording.recorder import Recorder

if TYPE_CHECKING:
    from watchkeeper.otlp.component import OtlpComponent

logger = logging.getLogger("watchkeeper")

REQUIRED_MODULES = ("opentelemetry.proto", "google.rpc.status_pb2")


def otlp_component(recorder: Recorder, settings: Settings, prefix: str) -> OtlpComponent | None:
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
        logger.debug("Watchkeeper: install watchkeeper[otlp] to accept traces at /v1/traces.")
        return None
    from watchkeeper.otlp.component import OtlpComponent  # noqa: PLC0415 - the optional extra

    return OtlpComponent.from_settings(recorder, settings, prefix)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False
