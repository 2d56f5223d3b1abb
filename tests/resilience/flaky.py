"""A real HTTP service on 127.0.0.1 that fails, hangs, rate-limits and recovers on cue."""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.support.server import LiveServer


@dataclass(frozen=True)
class Reply:
    status: int = 200
    retry_after: str | None = None
    delay: float = 0.0
    usage: int | None = None


@dataclass
class FlakyService:
    """Answers each request with the next scripted reply, then with ``default``."""

    default: Reply = field(default_factory=Reply)
    token: str | None = None
    """When set, requests must carry ``Authorization: Bearer <token>`` or get a 401."""
    script: deque[Reply] = field(default_factory=deque)
    hits: int = 0
    seen_tokens: list[str | None] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def plan(self, *replies: Reply) -> None:
        with self._lock:
            self.script.extend(replies)

    def reset(self) -> None:
        with self._lock:
            self.script.clear()
            self.default = Reply()
            self.token = None
            self.hits = 0
            self.seen_tokens.clear()

    def recover(self) -> None:
        with self._lock:
            self.script.clear()
            self.default = Reply()

    def fail_with(self, status: int) -> None:
        with self._lock:
            self.script.clear()
            self.default = Reply(status)

    def _next(self, authorization: str | None) -> Reply:
        with self._lock:
            self.hits += 1
            given = authorization.removeprefix("Bearer ") if authorization else None
            self.seen_tokens.append(given)
            if self.token is not None and given != self.token:
                return Reply(401)
            return self.script.popleft() if self.script else self.default

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.api_route("/answer", methods=["GET", "POST"])
        async def answer(request: Request) -> Response:
            reply = self._next(request.headers.get("authorization"))
            if reply.delay:
                await asyncio.sleep(reply.delay)
            headers = {"Retry-After": reply.retry_after} if reply.retry_after else {}
            body: dict[str, object] = {"status": reply.status, "hit": self.hits}
            if reply.usage is not None:
                body["usage"] = {"total_tokens": reply.usage}
            return JSONResponse(body, status_code=reply.status, headers=headers)

        return app


@contextmanager
def flaky_service(**options: object) -> Iterator[tuple[FlakyService, str]]:
    service = FlakyService(**options)  # type: ignore[arg-type]
    server = LiveServer(service.app()).start()
    try:
        yield service, f"{server.url}/answer"
    finally:
        server.stop()
