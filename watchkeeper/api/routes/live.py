"""``/api/v1/live``: the WebSocket, plus the task that publishes figures and health changes.

The key never travels in the URL, where access logs and proxies would keep it. The dashboard
authenticates with its session cookie (the browser sends it with the handshake; the socket's
``Origin`` must then be the server's own, so another site's page cannot ride on it). Other
clients send ``Authorization: Bearer`` or ``X-API-Key`` headers, or, when they cannot set
headers, the key as their first message, ``{"type": "auth", "key": "..."}``; the server waits
for it for a few seconds. A missing or wrong key, a key in the query string, a role that may not
read, or no auth message in time closes the socket with code 1008 (policy violation). Once the
caller is known the server sends ``{"type": "ready"}``, then only what the caller's scope
allows: spans of their organisation (or user), and figures and health built for that scope.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket

from watchkeeper.access.audit import Actor
from watchkeeper.access.control import AccessControl
from watchkeeper.access.keys import presented_key, require
from watchkeeper.access.limits import RateLimited
from watchkeeper.access.principal import Forbidden, Principal, Unauthorized
from watchkeeper.access.roles import Permission
from watchkeeper.access.sessions import COOKIE_NAME
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


def _same_origin(websocket: WebSocket) -> bool:
    origin = websocket.headers.get("origin")
    if origin is None:
        return True  # not a browser: no other site's page is behind it
    host = websocket.headers.get("host", "")
    return urlsplit(origin).netloc == host


def _principal(websocket: WebSocket, access: AccessControl, key: str | None) -> Principal:
    cookie = websocket.cookies.get(COOKIE_NAME)
    if key is None and cookie and access.auth.needs_key:
        if not _same_origin(websocket):
            raise _Refused("the session cookie is only accepted from Watchkeeper's own pages")
        return access.sessions.resolve(cookie).principal
    client = websocket.client.host if websocket.client else None
    actor = Actor(None, client, websocket.headers.get("user-agent"))
    return access.auth.authenticate(key, actor)


def router(context: ApiContext, hub: LiveHub, access: AccessControl) -> APIRouter:
    api = APIRouter(tags=["live"])

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
            has_cookie = bool(websocket.cookies.get(COOKIE_NAME))
            if key is None and not has_cookie and access.auth.needs_key:
                key = await _key_from_first_message(websocket)
                if key is None:
                    return  # the client left before authenticating
            try:
                principal = await asyncio.to_thread(_principal, websocket, access, key)
                require(principal, Permission.READ)
                await asyncio.to_thread(access.limiter.take, principal)
            except (Unauthorized, Forbidden, RateLimited) as error:
                raise _Refused(error.message) from None
        except _Refused as refused:
            await websocket.close(POLICY_VIOLATION, refused.reason)
            return
        await websocket.send_json({"type": "ready"})
        await serve_subscriber(websocket, hub, principal.scope())

    return api


async def publish_figures(context: ApiContext, hub: LiveHub) -> None:
    """Every few seconds while anyone listens: headline figures, and health when it changes,
    built for each scope that has subscribers and sent to that scope's subscribers only."""
    last_health: dict[Scope, dict[str, str]] = {}
    while True:
        await asyncio.sleep(FIGURES_INTERVAL)
        scopes = hub.scopes()
        for gone in set(last_health) - scopes:
            del last_health[gone]
        for scope in scopes:
            try:
                figures, health = await asyncio.to_thread(_figures_and_health, context, scope)
            except (StoreUnavailable, *DATABASE_ERRORS):
                break  # the figures come from the store: none to publish until it is back
            except Exception:
                # This task serves every subscriber of the process: a bug skips one round only.
                logger.exception("Watchkeeper could not build the live figures")
                break
            hub.publish(figures, scope)
            statuses = {item["name"]: item["status"] for item in health}
            if statuses != last_health.get(scope):
                last_health[scope] = statuses
                hub.publish({"type": "health", "integrations": health}, scope)


def _figures_and_health(context: ApiContext, scope: Scope) -> tuple[Message, list[Message]]:
    # The last five minutes, with rates over the part of them that holds data (as /overview).
    figures = headline(context.store, TimeRange.last(LIVE_WINDOW), scope)
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
        for item in judge(context, scope)
    ]
    return message, health
