"""The demo's guidance service: a FastAPI app instrumented with Watchkeeper as a user would.

``POST /api/guidance`` computes a birth chart, retrieves documents (relevance-checked), asks an
LLM through an agent that calls tools, speaks the answer and queues an avatar video; the
``/stream`` variant streams the LLM's answer as server-sent events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse, StreamingResponse
from openai import AsyncOpenAI
from pydantic import BaseModel, Field

import watchkeeper
from watchkeeper.config import Settings
from watchkeeper.demo.services import (
    Chart,
    FaultSchedule,
    Retrieval,
    ServiceError,
    Services,
    ServiceTimeout,
)
from watchkeeper.instrumentation.queues import MonitoredQueue
from watchkeeper.recording.recorder import Recorder

MODEL = "gpt-4o-mini"
# The app logs through the standard library, as most apps do; instrument() records its records
# with the request's trace, and the outage's failures with their exceptions.
logger = logging.getLogger("guidance")
WORDS = [
    "Your",
    "chart",
    "suggests",
    "a",
    "season",
    "of",
    "steady",
    "building.",
    "Saturn",
    "asks",
    "for",
    "patience",
    "while",
    "Jupiter",
    "opens",
    "a",
    "door",
    "in",
    "your",
    "tenth",
    "house;",
    "trust",
    "the",
    "work",
    "you",
    "have",
    "already",
    "done.",
]


# Resilience from code (WATCHKEEPER_RESILIENCE_FILE or _POLICIES could tune these numbers).
# The chart service goes flaky: a few quick retries, and the last good chart of the same birth
# date when they are spent or the breaker is open.
CHART_POLICY = watchkeeper.Policy(
    timeout=2.0,
    deadline=5.0,
    retry=watchkeeper.RetryPolicy(attempts=3, base_delay=0.05, max_delay=0.3, idempotent=True),
    breaker=watchkeeper.BreakerPolicy(
        failure_rate=0.4, minimum_calls=8, window=20, consecutive_failures=4, cool_down=5
    ),
    fallback=watchkeeper.FallbackPolicy(cache=True, stale_if_error=3_600),
)
# The speech service has outages: stop waiting on it once it is clearly down, answer with a
# short notice instead, and try it again a few seconds later.
SPEECH_POLICY = watchkeeper.Policy(
    timeout=1.0,
    deadline=3.0,
    retry=watchkeeper.RetryPolicy(attempts=2, base_delay=0.05, idempotent=True),
    breaker=watchkeeper.BreakerPolicy(consecutive_failures=3, cool_down=4),
    bulkhead=watchkeeper.BulkheadPolicy(max_concurrent=32, wait=1.0),
)
SPOKEN_NOTICE = b"RIFF" + bytes(64)
"""What the app plays while the speech service is down: "your reading will be read soon"."""


def guard_integrations() -> None:
    """Give the flaky services their policies (the calls below are guarded by name)."""
    watchkeeper.resilient(
        "astrology-api", policy=CHART_POLICY, key=lambda flow, birth_date: birth_date
    )
    watchkeeper.resilient(
        "elevenlabs", policy=SPEECH_POLICY, fallback=lambda flow, text: SPOKEN_NOTICE
    )


class Question(BaseModel):
    question: str = Field(min_length=1, max_length=2_000)
    birth_date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    place: str = Field(default="Lyon", max_length=200)


class Guidance(BaseModel):
    answer: str
    relevance: float
    avatar_job: bool


def register_rules() -> None:
    """The business rules the demo checks on its integrations' answers."""
    watchkeeper.register_validator(
        "pinecone", watchkeeper.MinimumScore(0.65, field="relevance"), watchkeeper.Severity.WARNING
    )
    watchkeeper.register_validator(
        "astrology-api",
        watchkeeper.RequiredFields(("sun", "moon", "ascendant", "houses")),
        watchkeeper.Severity.ERROR,
    )
    watchkeeper.register_validator("elevenlabs", watchkeeper.NotEmpty(), watchkeeper.Severity.ERROR)


class GuidanceFlow:
    """The steps of answering a question, each recorded the way a user would record it."""

    def __init__(self, services: Services, llm_base_url: str) -> None:
        self.services = services
        # The key is a placeholder: the local server checks nothing and nothing leaves the machine.
        self.llm = AsyncOpenAI(base_url=llm_base_url, api_key="demo-local-server", max_retries=0)
        self.rng = random.Random(11)
        self.jobs: MonitoredQueue[bytes] = MonitoredQueue("avatar_jobs", maxsize=500)
        self.credits = watchkeeper.counter("credits_used")

    @watchkeeper.resilient("astrology-api", "chart")
    async def chart(self, birth_date: str) -> Chart:
        return await self.services.chart(birth_date)

    @watchkeeper.tool("search_docs")
    @watchkeeper.integration("pinecone", "query")
    async def retrieve(self, question: str) -> Retrieval:
        return await self.services.retrieve(question)

    @watchkeeper.resilient("elevenlabs", "tts")
    async def speak(self, text: str) -> bytes:
        try:
            return await self.services.speak(text)
        except ServiceTimeout:
            # Each attempt that fails is logged with its exception; resilience retries, then
            # plays the spoken notice.
            logger.warning(
                "speech synthesis failed", exc_info=True, extra={"characters": len(text)}
            )
            raise

    async def llm_tokens(self, prompt: str) -> AsyncIterator[str]:
        """The LLM's streamed answer, through the real ``openai`` client.

        The demo points it at a local OpenAI-compatible server; Watchkeeper records the call
        (model, tokens, time to first token, cost) without any code here.
        """
        stream = await self.llm.chat.completions.create(
            model=MODEL,
            messages=[
                {"role": "system", "content": "You are a thoughtful astrology guide."},
                {"role": "user", "content": prompt},
            ],
            stream=True,
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content

    async def answer(self, body: Question) -> tuple[str, Retrieval]:
        details = {"question": body.question, "birth_date": body.birth_date, "place": body.place}
        watchkeeper.snapshot("question", details)
        natal = await self.chart(body.birth_date)
        with watchkeeper.agent("guide"):
            documents = await self.retrieve(body.question)
            watchkeeper.snapshot(
                "retrieved", {"documents": documents.documents, "relevance": documents.relevance}
            )
            with watchkeeper.tool("lookup_transits"):
                await asyncio.sleep(0.005)
            prompt = f"{body.question} sun={natal.sun} " + " ".join(documents.documents)
            text = "".join([token async for token in self.llm_tokens(prompt)])
        return text, documents

    async def finish(self, org_id: str | None, text: str) -> bool:
        audio = await self.speak(text)
        self.credits.add(1, org_id=org_id)
        try:
            self.jobs.put_nowait(audio)
        except asyncio.QueueFull:
            logger.warning("avatar queue full: no video for this answer", extra={"org": org_id})
            return False
        return True

    async def render_avatars(self) -> None:
        while True:
            audio = await self.jobs.get()
            try:
                with watchkeeper.integration("d-id", "render"):
                    await self.services.avatar(audio)
            except Exception:
                logger.exception("avatar rendering failed")
                self.jobs.task_failed()
                continue
            self.jobs.task_done()


def build_app(
    settings: Settings, llm_base_url: str, schedule: FaultSchedule | None = None
) -> tuple[FastAPI, Recorder]:
    """The app, calling the OpenAI-compatible server at ``llm_base_url`` for its answers."""
    register_rules()
    guard_integrations()
    logger.setLevel(logging.INFO)
    flow = GuidanceFlow(Services(schedule or FaultSchedule()), llm_base_url)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        workers = [asyncio.create_task(flow.render_avatars()) for _ in range(2)]
        yield
        for worker in workers:
            worker.cancel()
        for worker in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    app = FastAPI(title="Guidance (Watchkeeper demo)", lifespan=lifespan)

    @app.exception_handler(ServiceError)
    @app.exception_handler(ServiceTimeout)
    async def upstream_failed(request: Request, error: Exception) -> JSONResponse:
        # As a real app would: log it and tell the caller an upstream failed. Watchkeeper has
        # already recorded the error on the integration's span and marks the request failed.
        logger.error(
            "upstream failed for %s", request.url.path, exc_info=error, extra={"upstream": True}
        )
        return JSONResponse({"error": str(error)}, status_code=502)

    @app.exception_handler(watchkeeper.ResilienceError)
    async def upstream_refused(
        request: Request, error: watchkeeper.ResilienceError
    ) -> JSONResponse:
        # A breaker is open (or a limit reached) and no cached answer fits this caller: ask the
        # client to come back once the service may have recovered.
        logger.warning("%s refused for %s: %s", error.integration, request.url.path, error)
        headers = {} if error.retry_in is None else {"Retry-After": str(math.ceil(error.retry_in))}
        return JSONResponse({"error": str(error)}, status_code=503, headers=headers)

    @app.post("/api/guidance", response_model=Guidance)
    async def guidance(body: Question, x_org_id: str | None = Header(default=None)) -> Guidance:
        text, documents = await flow.answer(body)
        queued = await flow.finish(x_org_id, text)
        logger.info(
            "guidance answered",
            extra={"relevance": documents.relevance, "words": len(text.split())},
        )
        return Guidance(answer=text.strip(), relevance=documents.relevance, avatar_job=queued)

    @app.post("/api/guidance/stream")
    async def guidance_stream(body: Question) -> StreamingResponse:
        natal = await flow.chart(body.birth_date)
        documents = await flow.retrieve(body.question)

        async def events() -> AsyncIterator[bytes]:
            prompt = f"{body.question} sun={natal.sun} " + " ".join(documents.documents)
            async for token in flow.llm_tokens(prompt):
                yield f"data: {token}\n\n".encode()
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.get("/api/health")
    async def ping() -> dict[str, str]:
        return {"status": "ok"}

    runtime = watchkeeper.instrument(app, settings)
    return app, runtime.recorder
