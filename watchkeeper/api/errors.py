"""One JSON error envelope for every failure: ``{"error": {"status", "message", "details"}}``.

Bad input is always a 4xx that says what was wrong; FastAPI's own validation errors are reshaped
into the same envelope so clients handle one format. A store that cannot be reached is a 503
with ``Retry-After``, wherever it is found (a route on the event loop or in the thread pool, a
dependency, serialising the answer). Anything else that goes wrong inside Watchkeeper's
application is a 500 in the same envelope, logged with its traceback: never plain text, and
never an exception left to the server (or to a host app's own middleware), which would reset
the connection.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from watchkeeper.access.keys import (
    Forbidden,
    Unauthorized,
    forbidden_response,
    unauthorized_response,
)
from watchkeeper.access.limits import RateLimited
from watchkeeper.model.errors import QueryError, StoreUnavailable
from watchkeeper.redaction import scrub_error
from watchkeeper.storage.errors import DATABASE_ERRORS, describe_error

logger = logging.getLogger("watchkeeper")


def error_response(
    status: int, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"status": status, "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


class NotFound(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


async def _query_error(request: Request, error: Exception) -> JSONResponse:
    return error_response(400, str(error))


async def _not_found(request: Request, error: Exception) -> JSONResponse:
    return error_response(404, error.message if isinstance(error, NotFound) else "not found")


async def _validation(request: Request, error: Exception) -> JSONResponse:
    details = []
    if isinstance(error, RequestValidationError):
        details = [
            {
                "location": ".".join(str(part) for part in item.get("loc", ())),
                "message": item.get("msg", ""),
            }
            for item in error.errors()
        ]
    return error_response(422, "the request's parameters are not valid", details)


async def _http(request: Request, error: Exception) -> JSONResponse:
    if isinstance(error, HTTPException):
        headers = dict(error.headers) if error.headers else {}
        if error.status_code == 405:
            headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
        return error_response(error.status_code, str(error.detail), headers=headers or None)
    return error_response(500, "internal error")


def _allowed_methods(request: Request) -> str:
    """The methods the API documents for the request's path, as a 405's ``Allow``.

    Starlette's own names only the methods of the first route whose path matched, while several
    routes may serve one path (``GET`` and ``POST`` of a collection). Where a literal path and a
    template both match (``/rules/preview`` and ``/rules/{name}``), the literal one is the path.
    """
    path: str = request.scope["path"]
    root_path: str = request.scope.get("root_path", "")
    if root_path and path.startswith(root_path + "/"):
        path = path[len(root_path) :]  # as routes match it
    documented: dict[str, Any] = request.app.openapi().get("paths", {})
    matching = [
        (template.count("{"), template)
        for template in documented
        if compile_path(template)[0].match(path)
    ]
    if not matching:
        return ""
    _, template = min(matching)
    return ", ".join(sorted(method.upper() for method in documented[template]))


async def _unauthorized(request: Request, error: Exception) -> JSONResponse:
    if isinstance(error, Unauthorized):
        return unauthorized_response(error)
    return error_response(401, "unauthorized")


async def _forbidden(request: Request, error: Exception) -> JSONResponse:
    if isinstance(error, Forbidden):
        return forbidden_response(error)
    return error_response(403, "forbidden")


async def _rate_limited(request: Request, error: Exception) -> JSONResponse:
    if isinstance(error, RateLimited):
        return error_response(429, error.message, headers={"Retry-After": error.retry_after_header})
    return error_response(429, "too many requests")


STORE_RETRY_AFTER_SECONDS = 5


def store_unavailable_response() -> JSONResponse:
    """The 503 for a store that cannot answer now; its reason is logged, never sent."""
    return error_response(
        503,
        "Watchkeeper's store cannot be reached right now; retry shortly",
        headers={"Retry-After": str(STORE_RETRY_AFTER_SECONDS)},
    )


async def _store_unavailable(request: Request, error: Exception) -> JSONResponse:
    logger.warning(
        "Watchkeeper's store could not answer %s %s: %s",
        request.method,
        request.url.path,
        scrub_error(str(error)),
    )
    return store_unavailable_response()


class ContainErrors:
    """Pure ASGI middleware: whatever escaped the handlers becomes an answer in the envelope.

    A database error that escaped the store's own wrapping is a 503 like
    :class:`StoreUnavailable`; anything else is a 500. Once an answer has started it cannot be
    replaced: the error is raised on, so the server ends the connection rather than let a
    truncated body pass for a whole one.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as error:
            if started:
                raise
            response = _contained(scope, error)
            await response(scope, receive, send)


def _contained(scope: Scope, error: Exception) -> JSONResponse:
    if isinstance(error, (StoreUnavailable, *DATABASE_ERRORS)):
        logger.warning(
            "Watchkeeper's store could not answer %s %s: %s",
            scope.get("method"),
            scope.get("path"),
            scrub_error(describe_error(error)),
        )
        return store_unavailable_response()
    logger.error(
        "Watchkeeper could not answer %s %s",
        scope.get("method"),
        scope.get("path"),
        exc_info=error,
    )
    return error_response(500, "Watchkeeper failed to answer this request; the error is logged")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(QueryError, _query_error)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(Unauthorized, _unauthorized)
    app.add_exception_handler(Forbidden, _forbidden)
    app.add_exception_handler(RateLimited, _rate_limited)
    app.add_exception_handler(StoreUnavailable, _store_unavailable)
    app.add_middleware(ContainErrors)
