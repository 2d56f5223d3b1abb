"""How requests are recorded: excluded paths, the trace header, identity extractors."""

from __future__ import annotations

from dataclasses import dataclass, field

from watchkeeper.config import DEFAULT_EXCLUDED_PATHS, DEFAULT_TRACE_HEADER, Settings
from watchkeeper.instrumentation.identity import (
    FromHeaders,
    FromJwtClaims,
    FromRequestState,
    IdentityExtractor,
)


@dataclass(frozen=True)
class RequestOptions:
    exclude_paths: tuple[str, ...] = DEFAULT_EXCLUDED_PATHS
    """Path prefixes, matched on whole segments: ``/health`` excludes ``/health/live``, not
    ``/healthcare``."""
    trace_header: str = DEFAULT_TRACE_HEADER
    identity: tuple[IdentityExtractor, ...] = field(
        default_factory=lambda: (FromHeaders(), FromJwtClaims())
    )
    """Read when the request starts, so the calls it makes carry the same identity."""
    late_identity: tuple[IdentityExtractor, ...] = field(
        default_factory=lambda: (FromRequestState(),)
    )
    """Read when the response is finished, for identity the app sets while handling it."""

    @classmethod
    def from_settings(cls, settings: Settings) -> RequestOptions:
        return cls(
            exclude_paths=tuple(settings.exclude_paths),
            trace_header=settings.trace_header,
            identity=(
                FromHeaders(settings.user_header, settings.org_header, settings.session_header),
                FromJwtClaims(),
            ),
        )
