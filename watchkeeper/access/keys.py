"""API keys: every protected route requires one unless access was opened explicitly.

Keys are compared in constant time against every configured key, so timing reveals neither a key
nor which one matched, and they are never logged. A key is accepted as ``Authorization: Bearer``
or ``X-API-Key`` (for scrapers that cannot send a bearer token).
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import JSONResponse

from watchkeeper.config import ConfigurationError, Settings

logger = logging.getLogger("watchkeeper")


class Unauthorized(Exception):
    """Raised by :class:`ApiKeyAuth`; rendered as a 401 JSON error by the API's handler."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def unauthorized_response(error: Unauthorized) -> JSONResponse:
    return JSONResponse(
        {"error": {"status": 401, "message": error.message}},
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="watchkeeper"'},
    )


@dataclass(frozen=True)
class ApiKeyAuth:
    """A FastAPI dependency; ``enabled=False`` makes it a no-op (for unprotected endpoints)."""

    keys: tuple[bytes, ...]
    open_access: bool
    enabled: bool = True

    @classmethod
    def from_settings(cls, settings: Settings, enabled: bool = True) -> ApiKeyAuth:
        keys = tuple(key.get_secret_value().encode() for key in settings.api_keys)
        if settings.open_access:
            logger.warning(
                "WATCHKEEPER_OPEN_ACCESS is on: the Watchkeeper API, dashboard and protected "
                "endpoints answer WITHOUT an API key. Use this for local development only."
            )
        elif enabled and not keys:
            raise ConfigurationError(
                "WATCHKEEPER_API_KEYS: no API key is configured, so the API and dashboard would "
                "be unusable. Set WATCHKEEPER_API_KEYS='[\"a-long-random-key\"]', or "
                "WATCHKEEPER_OPEN_ACCESS=true for local development."
            )
        return cls(keys, settings.open_access, enabled)

    def check(self, presented: str | None) -> None:
        if not self.enabled or self.open_access:
            return
        if not presented:
            raise Unauthorized(
                "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
            )
        candidate = presented.encode()
        matched = False
        for key in self.keys:
            matched |= hmac.compare_digest(candidate, key)
        if not matched:
            raise Unauthorized("the API key is not valid")

    def __call__(self, request: Request) -> None:
        self.check(
            presented_key(request.headers.get("authorization"), request.headers.get("x-api-key"))
        )


def presented_key(authorization: str | None, api_key_header: str | None) -> str | None:
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return api_key_header or None
