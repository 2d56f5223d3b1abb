"""Watchkeeper's paths in an app that ships to a collector: answered by the collector.

The collector sees every worker of the app, so its ``/metrics``, health, API, dashboard and live
feed are the app's whole view; each worker forwards those paths to it over a Unix socket. What
only the worker itself can say — is this process alive, can it take requests — is answered in
the worker, and so is everything while the collector does not answer (from the worker's own
figures, which cover its own process only).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any, cast

import httpx
from websockets.asyncio.client import unix_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

logger = logging.getLogger("watchkeeper")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]

PROCESS_PATHS = ("/livez", "/readyz", "/health/live", "/health/ready")
"""The worker's own liveness and readiness: a load balancer asks about this process."""
HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"transfer-encoding", b"upgrade", b"te", b"trailer"}
)
MAX_FORWARDED_BODY_BYTES = 64 * 1024 * 1024


class CollectorProxy:
    def __init__(self, http_socket: Path, local: ASGIApp, prefix: str) -> None:
        self.http_socket = http_socket
        self._local = local
        self._process_paths = frozenset(
            path for base in ("", prefix) for path in (base + p for p in PROCESS_PATHS)
        )
        # The transport itself, not a client: an app's own httpx calls are recorded as
        # outbound calls, Watchkeeper's conversation with its collector is not one.
        self._transport = httpx.AsyncHTTPTransport(uds=str(http_socket))

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "http" and scope["path"] not in self._process_paths:
            await self._http(scope, receive, send)
        else:
            await self._local(scope, receive, send)

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def _http(self, scope: Scope, receive: Any, send: Any) -> None:
        body = await _read_body(receive)
        query = scope.get("query_string", b"")
        target = scope.get("raw_path") or scope["path"].encode()
        request = httpx.Request(
            scope["method"],
            httpx.URL("http://collector" + target.decode("latin-1")).copy_with(query=query),
            headers=[(name, value) for name, value in scope["headers"] if name.lower() != b"host"],
            content=body,
        )
        try:
            response = await self._transport.handle_async_request(request)
        except httpx.TransportError:
            await self._local(scope, _replay(body), send)
            return
        try:
            headers = [
                (name, value)
                for name, value in response.headers.raw
                if name.lower() not in HOP_BY_HOP
            ]
            await send(
                {"type": "http.response.start", "status": response.status_code, "headers": headers}
            )
            async for chunk in cast(httpx.AsyncByteStream, response.stream):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()

    async def _websocket(self, scope: Scope, receive: Any, send: Any) -> None:
        """The live feed: relayed both ways, message by message."""
        first = await receive()
        if first["type"] != "websocket.connect":
            return
        path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        query = scope.get("query_string", b"").decode("latin-1")
        uri = "ws://collector" + path + (f"?{query}" if query else "")
        try:
            upstream = await unix_connect(str(self.http_socket), uri, open_timeout=10)
        except (OSError, InvalidHandshake, TimeoutError):
            await send({"type": "websocket.close", "code": 1011})
            return
        await send({"type": "websocket.accept"})
        async with upstream:

            async def to_collector() -> None:
                while True:
                    message = await receive()
                    if message["type"] == "websocket.disconnect":
                        return
                    text, data = message.get("text"), message.get("bytes")
                    await upstream.send(text if text is not None else (data or b""))

            async def to_browser() -> None:
                with contextlib.suppress(ConnectionClosed):
                    async for message in upstream:
                        key = "text" if isinstance(message, str) else "bytes"
                        await send({"type": "websocket.send", key: message})
                with contextlib.suppress(Exception):
                    await send({"type": "websocket.close", "code": upstream.close_code or 1000})

            tasks = [asyncio.create_task(to_collector()), asyncio.create_task(to_browser())]
            _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed, OSError):
                    await task


async def _read_body(receive: Any) -> bytes:
    chunks = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks += message.get("body", b"")
        if len(chunks) > MAX_FORWARDED_BODY_BYTES or not message.get("more_body", False):
            break
    return bytes(chunks)


def _replay(body: bytes) -> Callable[[], Awaitable[Message]]:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
