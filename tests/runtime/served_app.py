"""An instrumented app for tests that run it under a real uvicorn process (settings from the
environment, as a deployment would give them)."""

import asyncio

from fastapi import APIRouter, FastAPI

import watchkeeper

router = APIRouter(prefix="/api/v1", tags=["work"])


@router.get("/work/{number}")
async def work(number: int) -> dict[str, int]:
    with watchkeeper.integration("upstream", "call"):
        await asyncio.sleep(0.005)
    return {"number": number}


app = FastAPI()
app.include_router(router)
watchkeeper.instrument(app)
