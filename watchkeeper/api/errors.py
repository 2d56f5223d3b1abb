"""One JSON error envelope for every failure: ``{"error": {"status", "message", "details"}}``.

Bad input is always a 4xx that says what was wrong; FastAPI's own validation errors are reshaped
into the same envelope so clients handle one format.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from watchkeeper.access.keys import Unauthorized, unauthorized_response
from watchkeeper.model.errors import QueryError, StoreUnavailable


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
        # Keep the exception's headers: a 405 must say which methods are allowed.
        return error_response(
            error.status_code,
            str(error.detail),
            headers=dict(error.headers) if error.headers else None,
        )
    return error_response(500, "internal error")


async def _unauthorized(request: Request, error: Exception) -> JSONResponse:
    if isinstance(error, Unauthorized):
        return unauthorized_response(error)
    return error_response(401, "unauthorized")


STORE_RETRY_AFTER_SECONDS = 5


async def _store_unavailable(request: Request, error: Exception) -> JSONResponse:
    return error_response(
        503,
        "Watchkeeper's store cannot be reached right now; retry shortly",
        headers={"Retry-After": str(STORE_RETRY_AFTER_SECONDS)},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(QueryError, _query_error)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(Unauthorized, _unauthorized)
    app.add_exception_handler(StoreUnavailable, _store_unavailable)
