"""Simulated users: sessions of several questions each, over real HTTP, at a chosen rate."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

import httpx

QUESTIONS = [
    "Is this a good year to change careers?",
    "What does my Saturn return mean for my relationships?",
    "Should I sign the contract this month?",
    "Why do I feel restless lately?",
    "Which house is Jupiter moving through for me?",
]
ORGS = ["acme-coaching", "northstar", "lumen-health"]


@dataclass
class TrafficStats:
    sent: int = 0
    ok: int = 0
    failed: int = 0
    sessions: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def rate(self) -> float:
        return self.sent / max(time.monotonic() - self.started, 1e-6)


async def drive(
    base_url: str, rate: float, duration: float | None, stats: TrafficStats, seed: int = 5
) -> None:
    """Send about ``rate`` requests a second until ``duration`` passes (or forever)."""
    rng = random.Random(seed)
    deadline = None if duration is None else time.monotonic() + duration
    # The simulated users are not the app: sending through the transport, below httpx's client,
    # keeps Watchkeeper's outbound recording (which wraps the client) from counting them as the
    # app's own calls.
    async with httpx.AsyncHTTPTransport() as transport:
        client = _Users(base_url, transport)
        running: set[asyncio.Task[None]] = set()
        while deadline is None or time.monotonic() < deadline:
            stats.sessions += 1
            task = asyncio.create_task(_session(client, rng, stats, stats.sessions))
            running.add(task)
            task.add_done_callback(running.discard)
            # A session asks about three questions, so start sessions at a third of the rate.
            await asyncio.sleep(rng.expovariate(rate / 3))
        if running:
            await asyncio.wait(running, timeout=30)


class _Users:
    def __init__(self, base_url: str, transport: httpx.AsyncHTTPTransport) -> None:
        self.base_url = base_url
        self.transport = transport

    async def post(self, path: str, json: object, headers: dict[str, str]) -> httpx.Response:
        request = httpx.Request("POST", self.base_url + path, json=json, headers=headers)
        response = await asyncio.wait_for(self.transport.handle_async_request(request), 30)
        await response.aread()
        return response


async def _session(client: _Users, rng: random.Random, stats: TrafficStats, number: int) -> None:
    user = f"user-{rng.randrange(60):03d}"
    headers = {
        "X-User-ID": user,
        "X-Org-ID": ORGS[hash(user) % len(ORGS)],
        "X-Session-ID": f"session-{number:05d}",
    }
    birth = f"19{rng.randrange(60, 99)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
    for _ in range(rng.randint(2, 5)):
        body = {"question": rng.choice(QUESTIONS), "birth_date": birth}
        path = "/api/guidance/stream" if rng.random() < 0.3 else "/api/guidance"
        stats.sent += 1
        try:
            response = await client.post(path, json=body, headers=headers)
            stats.ok += response.status_code < 500
            stats.failed += response.status_code >= 500
        except httpx.HTTPError:
            stats.failed += 1
        await asyncio.sleep(rng.uniform(0.5, 2.0))  # the user reads before asking again
