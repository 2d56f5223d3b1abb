"""The dashboard: static assets shipped in the package, served under any mount path.

Nothing is fetched at run time and nothing needs Node.js: the page, its script, its styles and
the vendored chart library (uPlot, MIT, see ``static/vendor/uplot``) are plain files. The page
itself holds no data; everything it shows comes from the API with the key the user logs in with.
"""

from __future__ import annotations

import html
from functools import cache
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(str(files("watchkeeper.dashboard") / "static"))


@cache
def _index_template() -> str:
    return (STATIC / "index.html").read_text(encoding="utf-8")


def index_page(base_path: str) -> str:
    """The page with its ``<base>`` set, so the script finds the API and assets beside it."""
    base = base_path.rstrip("/") + "/"
    return _index_template().replace("{{BASE}}", html.escape(base, quote=True))


class DashboardComponent:
    """The dashboard at ``path`` (``""`` for the root of a standalone server)."""

    name = "dashboard"

    def __init__(self, path: str = "/watchkeeper") -> None:
        self._router = dashboard_router(path)

    def router(self) -> APIRouter:
        return self._router

    async def start(self) -> None:
        """Static files: nothing to start."""

    async def stop(self) -> None:
        """Nothing to stop."""


def dashboard_router(path: str) -> APIRouter:
    prefix = path.rstrip("/")
    page = index_page(prefix or "/")
    router = APIRouter(include_in_schema=False)

    @router.get(prefix + "/", response_class=HTMLResponse)
    def dashboard() -> HTMLResponse:
        return HTMLResponse(
            page,
            headers={
                # The page runs only its own script: values from users are never markup.
                "Content-Security-Policy": (
                    "default-src 'self'; script-src 'self'; style-src 'self'; "
                    "img-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'none'"
                ),
                "Cache-Control": "no-store",
            },
        )

    if prefix:

        @router.get(prefix, response_class=HTMLResponse)
        def dashboard_without_slash() -> HTMLResponse:
            return dashboard()

    router.mount(
        prefix + "/static", StaticFiles(directory=STATIC), name=f"watchkeeper-static{prefix}"
    )
    return router
