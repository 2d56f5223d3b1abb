"""A host app shaped like fastapi/full-stack-fastapi-template's backend, to try Watchkeeper in.

Routers included under ``/api/v1``, tags-based unique operation ids (which raise on a route
without tags, as the template's do), its own exception handlers, JWT bearer auth, a streaming
endpoint, a background task, a websocket and a middleware of its own.
"""

import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import jwt
from fastapi import (
    APIRouter,
    BackgroundTasks,
    Depends,
    FastAPI,
    HTTPException,
    Request,
    WebSocket,
)
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from fastapi.security import OAuth2PasswordBearer, OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

SECRET = "host-app-secret-0123456789abcdef0123456789"
API_V1 = "/api/v1"
USERS = {"alice@example.com": ("alice-password", "user-1", "org-a")}


def unique_id(route: APIRoute) -> str:
    # The template's own: a route without tags makes its OpenAPI document fail.
    return f"{route.tags[0]}-{route.name}"


class Item(BaseModel):
    title: str = Field(min_length=1, max_length=255)
    description: str | None = None


def build_host_app(background_log: list[str] | None = None) -> FastAPI:
    """A fresh app each call, so it can be built with and without Watchkeeper."""
    done = background_log if background_log is not None else []
    oauth2 = OAuth2PasswordBearer(tokenUrl=f"{API_V1}/login/access-token")
    items: dict[int, Item] = {1: Item(title="first")}

    def current_user(token: Annotated[str, Depends(oauth2)]) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(token, SECRET, algorithms=["HS256"])
        except jwt.PyJWTError:
            raise HTTPException(status_code=403, detail="Could not validate credentials") from None
        return claims

    login = APIRouter(tags=["login"])

    @login.post("/login/access-token")
    def access_token(form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> dict[str, str]:
        known = USERS.get(form.username)
        if known is None or known[0] != form.password:
            raise HTTPException(status_code=400, detail="Incorrect email or password")
        claims = {"sub": known[1], "org_id": known[2], "exp": int(time.time()) + 3600}
        return {
            "access_token": jwt.encode(claims, SECRET, algorithm="HS256"),
            "token_type": "bearer",
        }

    item_router = APIRouter(prefix="/items", tags=["items"])
    User = Annotated[dict[str, Any], Depends(current_user)]

    @item_router.get("/")
    def read_items(user: User) -> list[Item]:
        return list(items.values())

    @item_router.get("/{item_id}")
    def read_item(item_id: int, user: User) -> Item:
        item = items.get(item_id)
        if item is None:
            # A dict detail: the host's handler shapes it; Watchkeeper must not reshape it.
            raise HTTPException(status_code=404, detail={"code": "item_missing", "id": item_id})
        return item

    @item_router.post("/")
    def create_item(item: Item, user: User, tasks: BackgroundTasks) -> Item:
        items[max(items) + 1] = item
        tasks.add_task(done.append, f"indexed {item.title}")
        return item

    @item_router.put("/{item_id}")
    def update_item(item_id: int, item: Item, user: User) -> Item:
        items[item_id] = item
        return item

    @item_router.delete("/{item_id}")
    def delete_item(item_id: int, user: User) -> dict[str, str]:
        items.pop(item_id, None)
        return {"message": "Item deleted successfully"}

    utils = APIRouter(prefix="/utils", tags=["utils"])

    @utils.get("/health-check/")
    async def health_check() -> bool:
        return True

    @utils.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for number in range(5):
                yield f"data: {number}\n\n".encode()

        return StreamingResponse(chunks(), media_type="text/event-stream")

    @utils.websocket("/ws/echo")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        message = await websocket.receive_text()
        await websocket.send_text(f"echo: {message}")
        await websocket.close()

    api_router = APIRouter()
    api_router.include_router(login)
    api_router.include_router(item_router)
    api_router.include_router(utils)

    app = FastAPI(
        title="Full Stack Host",
        openapi_url=f"{API_V1}/openapi.json",
        generate_unique_id_function=unique_id,
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["http://localhost:5173"],
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
    )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"host_error": "invalid", "count": len(error.errors())}, 422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return JSONResponse({"host_error": error.detail}, status_code=error.status_code)

    @app.get("/", tags=["root"])
    async def root() -> dict[str, str]:
        return {"hello": "host"}

    app.include_router(api_router, prefix=API_V1)
    return app
