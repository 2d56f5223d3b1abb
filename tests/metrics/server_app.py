"""A small instrumented FastAPI app served by uvicorn in the end-to-end tests (settings from the
environment, as a deployment would give them).

Watchkeeper's request middleware records the requests and serves ``/metrics``; the recorder
writes into memory, so the workers share nothing but the metrics directory.
"""

from __future__ import annotations

from fastapi import FastAPI

import watchkeeper
from watchkeeper.config import load_settings
from watchkeeper.recording.recorder import Recorder
from watchkeeper.testing import MemorySink

recorder = Recorder(load_settings(flush_interval=0.1), sink=MemorySink())
app = FastAPI()
# Started and stopped with the server's lifespan, through the middleware.
watchkeeper.instrument(app, recorder=recorder, outbound=False)


@app.get("/items/{item_id}")
async def item(item_id: int) -> dict[str, int]:
    return {"item_id": item_id}
