"""Naming an error's group from the app's code, as Sentry's ``scope.fingerprint`` does.

Errors are grouped by their in-app stack, else by their type and normalised message. Where that
splits one failure into several groups (a retry loop failing in different places) or joins two
(one helper raising for unrelated reasons), the code names the group: the failure of the current
span (the request, or the integration call or tool inside it) is grouped by that name alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from watchkeeper.model.grouping import FINGERPRINT, fingerprint_of
from watchkeeper.recording.default import get_recorder
from watchkeeper.recording.recorder import Recorder
from watchkeeper.recording.spans import current_span


def set_fingerprint(fingerprint: str | Sequence[str], recorder: Recorder | None = None) -> None:
    """Group a failure of the current span under ``fingerprint`` (a string, or a list of parts).

    Outside a span this does nothing; a log record names its group with
    ``extra={"fingerprint": ...}`` instead. Misuse is contained, as for sessions.
    """
    try:
        name = fingerprint_of(fingerprint)
        if not name:
            raise ValueError(f"a fingerprint must be a non-empty string, got {fingerprint!r}")
    except ValueError as error:
        (recorder or get_recorder()).report_internal_error("set_fingerprint()", error)
        return
    span = current_span.get()
    if span is not None:
        span.set_attribute(FINGERPRINT, name)
