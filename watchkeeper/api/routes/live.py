"""``/api/v1/live``: the WebSocket, plus the task that publishes figures and health changes."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fastapi import APIRouter, WebSocket

from watchkeeper.access.keys import ApiKeyAuth, Unauthorized, presented_key
from watchkeeper.api.context import ApiContext
from watchkeeper.api.live import LiveHub, Message, serve_subscriber
from watchkeeper.api.routes.integrations import judge
from watchkeeper.storage.base import Scope, TimeRange

FIGURES_INTERVAL = 5.0
POLICY_VIOLATION = 1008


def router(context: ApiContext, hub: LiveHub, auth: ApiKeyAuth) -> APIRouter:
    api = APIRouter(tags=["live"])

    @api.websocket("/live")
    async def live(websocket: WebSocket) -> None:
        # Browsers cannot set headers on a WebSocket, so the key may come as ?key=.
        key = presented_key(
            websocket.headers.get("authorization"),
            websocket.headers.get("x-api-key") or websocket.query_params.get("key"),
        )
        # Accept first, then close with a reason: a browser cannot read a refused handshake.
        await websocket.accept()
        try:
            auth.check(key)
        except Unauthorized as error:
            await websocket.close(POLICY_VIOLATION, error.message)
            return
        await serve_subscriber(websocket, hub)

    return api


async def publish_figures(context: ApiContext, hub: LiveHub) -> None:
    """Every few seconds while anyone listens: headline figures, and health when it changes."""
    last_health: dict[str, str] = {}
    while True:
        await asyncio.sleep(FIGURES_INTERVAL)
        if not hub.subscribers:
            continue
        figures, health = await asyncio.to_thread(_figures_and_health, context)
        hub.publish(figures)
        statuses = {item["name"]: item["status"] for item in health}
        if statuses != last_health:
            last_health = statuses
            hub.publish({"type": "health", "integrations": health})


def _figures_and_health(context: ApiContext) -> tuple[Message, list[Message]]:
    window = TimeRange.last(timedelta(minutes=5))
    totals = {total.kind: total for total in context.store.kind_totals(window, Scope.everything())}
    requests = totals.get("request")
    figures: Message = {
        "type": "figures",
        "window_seconds": 300,
        "requests_per_second": (requests.count / 300) if requests else 0.0,
        "error_rate": requests.error_rate if requests else 0.0,
        "p50": requests.p50 if requests else None,
        "p95": requests.p95 if requests else None,
        "p99": requests.p99 if requests else None,
        "cost_per_hour": sum(total.cost for total in totals.values()) * 12,
    }
    health = [
        {"name": item.name, "status": item.status, "reasons": item.reasons}
        for item in judge(context, Scope.everything())
    ]
    return figures, health
