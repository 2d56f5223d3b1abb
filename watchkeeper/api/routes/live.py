"""``/api/v1/live``: the WebSocket, plus the task that publishes figures and health changes.

The key never travels in the URL, where access logs and proxies would keep it. A browser cannot
set headers on a WebSocket, so it sends the key as its first message,
``{"type": "auth", "key": "..."}``; the server waits for it for a few seconds. Other clients may
send ``Authorization: Bearer`` or ``X-API-Key`` headers instead. A missing or wrong key, a key
in the query string, or no auth message in time closes the socket with code 1008 (policy
violation). Once the key is accepted the server sends ``{"type": "ready"}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta

from fastapi import APIRouter, WebSocket

from watchkeeper.access.keys import ApiKeyAuth, Unauthorized, presented_key
from watchkeeper.api.context import ApiContext
from watchkeeper.api.live import LiveHub, Message, serve_subscriber
from watchkeeper.api.routes.integrations import judge
from watchkeeper.api.routes.overview import headline
from watchkeeper.model.errors import StoreUnavailable
from watchkeeper.model.query import Scope, TimeRange
from watchkeeper.storage.errors import DATABASE_ERRORS

logger = logging.getLogger("watchkeeper")

FIGURES_INTERVAL = 5.0
POLICY_VIOLATION = 1008
LIVE_WINDOW = timedelta(minutes=5)
AUTH_TIMEOUT = 5.0
"""Seconds a connection may stay open without having presented a key."""
AUTH_MESSAGE_SIZE = 4096
KEY_IN_URL = 'never put the API key in the URL: send {"type": "auth", "key": ...} first'
NO_AUTH_MESSAGE = 'the first message must be {"type": "auth", "key": "<API key>"}'


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def _key_from_first_message(websocket: WebSocket) -> str | None:
    """The key in the client's first message; ``None`` if the client left first."""
    try:
        message = await asyncio.wait_for(websocket.receive(), AUTH_TIMEOUT)
    except TimeoutError:
        raise _Refused(f"no auth message within {AUTH_TIMEOUT:g} s") from None
    if message["type"] == "websocket.disconnect":
        return None
    text = message.get("text")
    if not isinstance(text, str) or len(text) > AUTH_MESSAGE_SIZE:
        raise _Refused(NO_AUTH_MESSAGE)
    try:
        body = json.loads(text)
    except ValueError:
        raise _Refused(NO_AUTH_MESSAGE) from None
    if not isinstance(body, dict) or body.get("type") != "auth":
        raise _Refused(NO_AUTH_MESSAGE)
    key = body.get("key")
    if not isinstance(key, str) or not key:
        raise _Refused(NO_AUTH_MESSAGE)
    return key


def router(context: ApiContext, hub: LiveHub, auth: ApiKeyAuth) -> APIRouter:
    api = APIRouter(tags=["live"])
    needs_key = auth.enabled and not auth.open_access

    @api.websocket("/live")
    async def live(websocket: WebSocket) -> None:
        # Accept first, then close with a reason: a browser cannot read a refused handshake.
        await websocket.accept()
        try:
            if "key" in websocket.query_params:
                raise _Refused(KEY_IN_URL)
            key = presented_key(
                websocket.headers.get("authorization"), websocket.headers.get("x-api-key")
            )
            if key is None and needs_key:
                key = await _key_from_first_message(websocket)
                if key is None:
                    return  # the client left before authenticating
            try:
                auth.check(key)
            except Unauthorized as error:
                raise _Refused(error.message) from None
        except _Refused as refused:
            await websocket.close(POLICY_VIOLATION, refused.reason)
            return
        await websocket.send_json({"type": "ready"})
        await serve_subscriber(websocket, hub)

    return api


async def publish_figures(context: ApiContext, hub: LiveHub) -> None:
    """Every few seconds while anyone listens: headline figures, and health when it changes."""
    last_health: dict[str, str] = {}
    while True:
        await asyncio.sleep(FIGURES_INTERVAL)
        if not hub.subscribers:
            continue
        try:
            figures, health = await asyncio.to_thread(_figures_and_health, context)
        except (StoreUnavailable, *DATABASE_ERRORS):
            continue  # the figures come from the store: none to publish until it is back
        except Exception:
            # This task serves every subscriber of the process: a bug skips one round only.
            logger.exception("Watchkeeper could not build the live figures")
            continue
        hub.publish(figures)
        statuses = {item["name"]: item["status"] for item in health}
        if statuses != last_health:
            last_health = statuses
            hub.publish({"type": "health", "integrations": health})


def _figures_and_health(context: ApiContext) -> tuple[Message, list[Message]]:
    # The last five minutes, with rates over the part of them that holds data (as /overview).
    figures = headline(context.store, TimeRange.last(LIVE_WINDOW), Scope.everything())
    message: Message = {
        "type": "figures",
        "window_seconds": LIVE_WINDOW.total_seconds(),
        "covered_seconds": figures.covered_seconds,
        "requests_per_second": figures.requests_per_second,
        "error_rate": figures.error_rate,
        "p50": figures.p50,
        "p95": figures.p95,
        "p99": figures.p99,
        "cost_per_hour": figures.cost_per_hour,
    }
    health = [
        {"name": item.name, "status": item.status, "reasons": item.reasons}
        for item in judge(context, Scope.everything())
    ]
    return message, health
