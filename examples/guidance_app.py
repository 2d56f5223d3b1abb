"""A small guidance chatbot instrumented with Watchkeeper: every feature in one readable file.

    WATCHKEEPER_API_KEYS='["change-me"]' OPENAI_BASE_URL=http://127.0.0.1:8001/v1 \\
        uvicorn examples.guidance_app:app

Any OpenAI-compatible server works (``watchkeeper.testing.fake_ai.FakeAIServer`` for a local one).
The dashboard is then at http://127.0.0.1:8000/watchkeeper/.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Header
from openai import AsyncOpenAI
from pydantic import BaseModel

import watchkeeper

llm = AsyncOpenAI(
    base_url=os.environ.get("OPENAI_BASE_URL"), api_key=os.environ.get("OPENAI_API_KEY", "local")
)
renders: watchkeeper.MonitoredQueue[str] = watchkeeper.MonitoredQueue("renders", maxsize=100)
credits = watchkeeper.counter("credits_used")

# Business rules, checked on every result of the named integrations and recorded as issues.
watchkeeper.register_validator("vector-store", watchkeeper.MinimumScore(0.65, field="relevance"))
watchkeeper.register_validator("voice", watchkeeper.NotEmpty(), watchkeeper.Severity.ERROR)


class Question(BaseModel):
    text: str
    birth_date: str


@watchkeeper.tool("search_docs")
@watchkeeper.integration("vector-store", "query")
async def search(text: str) -> dict[str, object]:
    await asyncio.sleep(0.02)
    return {"documents": ["Saturn returns restructure careers."], "relevance": 0.78}


@watchkeeper.integration("voice", "tts")
async def speak(text: str) -> bytes:
    await asyncio.sleep(0.05)
    return text.encode()


async def render_worker() -> None:
    while True:
        job = await renders.get()
        with watchkeeper.integration("avatar", "render"):
            await asyncio.sleep(0.05)
        renders.task_done()
        del job


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    worker = asyncio.create_task(render_worker())
    yield
    worker.cancel()


app = FastAPI(lifespan=lifespan)


@app.post("/api/guidance")
async def guidance(
    question: Question, x_session_id: str = Header(), x_org_id: str | None = Header(default=None)
) -> dict[str, str]:
    watchkeeper.start_session(x_session_id)
    watchkeeper.snapshot("question", {"text": question.text, "birth_date": question.birth_date})
    with watchkeeper.agent("guide"):
        found = await search(question.text)
        reply = await llm.chat.completions.create(  # recorded with model, tokens and cost
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": f"{question.text} {found['documents']}"}],
        )
    answer = reply.choices[0].message.content or ""
    await speak(answer)
    renders.put_nowait(answer)
    credits.add(1, org_id=x_org_id)
    return {"answer": answer}


watchkeeper.instrument(app)  # the one line that records all of the above
