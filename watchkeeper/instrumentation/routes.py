"""The route template a request matched, which names its span.

Starlette and FastAPI leave the matched route in ``scope["route"]`` once routing is done; the
template is read from there (for FastAPI's included routers, from the effective path it keeps
beside the route, so the routers' prefixes are part of the name). Older Starlette versions (and
plain Starlette routes there) do not, so the template is then found by matching the app's routes
again, remembered per method and path in a bounded cache so a hot endpoint is matched once, and
scanners probing random paths cannot grow memory.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import MutableMapping, Sequence
from typing import Any

from starlette.routing import BaseRoute, Match, Mount

from watchkeeper.recording.attributes import UNMATCHED_ROUTE

Scope = MutableMapping[str, Any]
CACHE_SIZE = 2_048


class RouteNames:
    def __init__(self, cache_size: int = CACHE_SIZE) -> None:
        if cache_size < 1:
            raise ValueError(f"the route cache needs room for at least one route, got {cache_size}")
        self._cache: OrderedDict[tuple[str, str, str], str] = OrderedDict()
        self._cache_size = cache_size

    def name(self, scope: Scope, root_path: str) -> str:
        """The template of the route ``scope`` was routed to, mounts included; else ``"none"``.

        ``root_path`` is the one the request arrived with: what routing added to it since is the
        prefix of the mounts passed on the way, while a proxy's prefix stays out of the name.
        """
        route = scope.get("route")
        if route is None:
            return self._resolved(scope, root_path)
        template = _included_template(scope, route)
        if template is None:
            template = getattr(route, "path", None)
        if not isinstance(template, str):
            return UNMATCHED_ROUTE
        routed_root: str = scope.get("root_path", "")
        if isinstance(route, Mount):
            # Still the mount: either a mounted app has no routes of its own (static files, a bare
            # ASGI app) and the mount names it, or none of the mounted app's routes matched.
            return UNMATCHED_ROUTE if route.routes else routed_root[len(root_path) :] or template
        if routed_root == root_path:  # no mount on the way, as for most requests: nothing to add
            return template
        return routed_root[len(root_path) :] + template

    def _resolved(self, scope: Scope, root_path: str) -> str:
        key = (scope["type"], scope.get("method", ""), scope["path"])
        cache = self._cache
        name = cache.get(key)
        if name is not None:
            cache.move_to_end(key)
            return name
        router = scope.get("router")
        routes: Sequence[BaseRoute] = getattr(router, "routes", ())
        probe = {**scope, "root_path": root_path}
        name = _match(routes, probe, "") or UNMATCHED_ROUTE
        cache[key] = name
        if len(cache) > self._cache_size:
            cache.popitem(last=False)
        return name


def _included_template(scope: Scope, route: object) -> str | None:
    """The full template of a route reached through included routers, prefixes and all.

    FastAPI includes routers lazily: the route left in ``scope["route"]`` is the one declared on
    the router, whose own path lacks the prefixes it was included with. FastAPI keeps the route's
    effective path beside it, for its own telemetry; it is used when it belongs to this route.
    """
    fastapi_scope = scope.get("fastapi")
    if not isinstance(fastapi_scope, dict):
        return None
    context = fastapi_scope.get("effective_route_context")
    if context is None or getattr(context, "original_route", None) is not route:
        return None
    template = getattr(getattr(context, "starlette_route", None), "path_format", None) or getattr(
        context, "path_format", None
    )
    return template if isinstance(template, str) else None


def _match(routes: Sequence[BaseRoute], scope: Scope, prefix: str) -> str | None:
    partial: str | None = None
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.NONE:
            continue
        if isinstance(route, Mount):
            template: str | None = (
                _match(route.routes, {**scope, **child}, prefix + route.path)
                if route.routes
                else prefix + route.path
            )
        else:
            path = getattr(route, "path", None)
            template = prefix + path if isinstance(path, str) else None
        if match is Match.FULL:
            return template
        # A partial match is the route answering 405 Method Not Allowed: named, unless a later
        # route matches fully, as Starlette's router decides.
        partial = partial or template
    return partial
