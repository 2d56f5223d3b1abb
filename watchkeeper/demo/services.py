"""The external services the demo app calls, simulated locally with realistic behaviour.

Latencies are log-normal (most calls quick, a long tail), token counts vary with the question,
and a fault schedule repeats every cycle: the charting service goes flaky for a while, and the
speech service has an outage, so the dashboard has something to show.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from dataclasses import dataclass, field


class ServiceError(RuntimeError):
    """A simulated service answered with an error, with the HTTP status it would have sent
    (resilience reads it to decide whether another attempt is worth it)."""

    def __init__(self, message: str, status_code: int = 503) -> None:
        super().__init__(message)
        self.status_code = status_code


class ServiceTimeout(TimeoutError):
    """A simulated service did not answer in time."""


@dataclass(frozen=True)
class Latency:
    median: float
    spread: float = 0.5

    def sample(self, rng: random.Random) -> float:
        return rng.lognormvariate(math.log(self.median), self.spread)


@dataclass
class FaultSchedule:
    """Where in each cycle things go wrong, as fractions of the cycle."""

    cycle_seconds: float = 90.0
    flaky: tuple[float, float] = (0.25, 0.45)
    outage: tuple[float, float] = (0.6, 0.75)
    started: float = field(default_factory=time.monotonic)

    def phase(self) -> float:
        return ((time.monotonic() - self.started) % self.cycle_seconds) / self.cycle_seconds

    def flaky_now(self) -> bool:
        return self.flaky[0] <= self.phase() < self.flaky[1]

    def outage_now(self) -> bool:
        return self.outage[0] <= self.phase() < self.outage[1]


@dataclass(frozen=True)
class Chart:
    sun: str
    moon: str
    ascendant: str
    houses: list[str]


@dataclass(frozen=True)
class Retrieval:
    documents: list[str]
    relevance: float


SIGNS = [
    "Aries",
    "Taurus",
    "Gemini",
    "Cancer",
    "Leo",
    "Virgo",
    "Libra",
    "Scorpio",
    "Sagittarius",
    "Capricorn",
    "Aquarius",
    "Pisces",
]
LIBRARY = [
    "Saturn returns around the age of twenty nine and bring a restructuring of careers.",
    "A Leo sun seeks recognition; a Cancer moon needs a safe home to recharge.",
    "Mercury retrograde periods favour reviewing contracts rather than signing them.",
    "The tenth house describes vocation, reputation and public standing.",
    "Venus transits highlight relationships, values and money.",
    "Jupiter expands whatever house it moves through, often bringing opportunity.",
]


class Services:
    def __init__(self, schedule: FaultSchedule, seed: int = 7) -> None:
        self.schedule = schedule
        self.rng = random.Random(seed)

    async def _wait(self, latency: Latency) -> None:
        await asyncio.sleep(latency.sample(self.rng))

    async def chart(self, birth_date: str) -> Chart:
        await self._wait(Latency(0.04))
        if self.schedule.flaky_now() and self.rng.random() < 0.35:
            raise ServiceError("astrology-api answered 503: ephemeris temporarily unavailable")
        sign = SIGNS[hash(birth_date) % 12]
        houses = [] if self.rng.random() < 0.03 else [f"house-{index}" for index in range(1, 13)]
        return Chart(sign, SIGNS[(hash(birth_date) // 12) % 12], self.rng.choice(SIGNS), houses)

    async def retrieve(self, question: str) -> Retrieval:
        await self._wait(Latency(0.025, 0.4))
        picks = self.rng.sample(LIBRARY, 3)
        relevance = min(0.99, max(0.2, self.rng.gauss(0.74, 0.1)))
        return Retrieval(picks, round(relevance, 3))

    async def speak(self, text: str) -> bytes:
        if self.schedule.outage_now():
            await asyncio.sleep(0.2)
            raise ServiceTimeout("elevenlabs did not answer within 0.2 s")
        await self._wait(Latency(0.12, 0.35))
        return b"RIFF" + bytes(min(len(text), 400))

    async def avatar(self, audio: bytes) -> str:
        await self._wait(Latency(0.08, 0.4))
        if self.rng.random() < 0.01:
            raise ServiceError("d-id rejected the audio: unsupported sample rate", 422)
        return f"https://avatars.example/{self.rng.randrange(10**8):08d}.mp4"
