"""What the resilient transports do, for httpx and httpx2 alike (see
:mod:`watchkeeper.resilience.transport`): the client's module is read off each request."""

from __future__ import annotations

import base64
import functools
import importlib
from collections.abc import Mapping
from typing import Any, Self

import orjson

from watchkeeper.instrumentation.hosts import HostMap
from watchkeeper.instrumentation.httpx import SPAN_EXTENSION, path_shape
from watchkeeper.instrumentation.propagation import recorded_by, recording_span
from watchkeeper.model.events import SpanKind, SpanStatus
from watchkeeper.recording.attributes import METHOD, STATUS_CODE
from watchkeeper.recording.default import get_recorder
from watchkeeper.recording.recorder import Recorder
from watchkeeper.recording.spans import ActiveSpan
from watchkeeper.resilience.calls import default_key
from watchkeeper.resilience.engine import Guard
from watchkeeper.resilience.events import CallRecord
from watchkeeper.resilience.registry import Resilience, get_resilience
from watchkeeper.resilience.schedule import IDEMPOTENT_METHODS

_TIMEOUTS = ("connect", "read", "write", "pool")


class StatusFailure(Exception):
    """A response whose status is worth another attempt (or a credential refresh)."""

    def __init__(self, response: Any) -> None:
        super().__init__(f"{response.status_code} {response.reason_phrase}")
        self.response = response
        self.status_code: int = response.status_code


def _module_of(request: Any) -> Any:
    """httpx or httpx2, whichever the request comes from."""
    return importlib.import_module(type(request).__module__.split(".")[0])


def _captured(response: Any, body: bytes) -> dict[str, Any]:
    """A response as JSON: kept as a cached answer, and read for its token usage."""
    document: dict[str, Any] = {
        "status": response.status_code,
        "headers": [[name, value] for name, value in response.headers.multi_items()],
        "body": base64.b64encode(body).decode(),
    }
    if "json" in response.headers.get("content-type", ""):
        try:
            usage = orjson.loads(body).get("usage")
        except (orjson.JSONDecodeError, AttributeError):
            usage = None
        if isinstance(usage, dict):
            document["usage"] = usage
    return document


def _rebuilt(module: Any, captured: dict[str, Any], request: Any) -> Any:
    return module.Response(
        captured["status"],
        headers=[tuple(pair) for pair in captured["headers"]],
        content=base64.b64decode(captured["body"]),
        request=request,
    )


class Transport:
    """What the blocking and async transports share: names, spans, the attempt's request."""

    def __init__(
        self,
        wrapped: Any,
        *,
        hosts: Mapping[str, str] | None = None,
        resilience: Resilience | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self._wrapped = wrapped
        self._resilience = resilience
        self._recorder = recorder
        self._extra_hosts = dict(hosts or {})
        self._hosts: HostMap | None = None
        self._names: dict[str, str] = {}

    @property
    def recorder(self) -> Recorder:
        return self._recorder or get_recorder()

    @property
    def resilience(self) -> Resilience:
        return self._resilience or get_resilience()

    def _guard(self, request: Any) -> Guard:
        host = request.url.host
        name = self._names.get(host)
        if name is None:
            name = self.resilience.for_host(host)
            if name is None:
                if self._hosts is None:
                    mapped = self.recorder.settings.integration_hosts
                    self._hosts = HostMap(mapped, self._extra_hosts)
                name = self._hosts.name_for(host)
            self._names[host] = name
        return self.resilience.guard(name)

    def _span(self, request: Any, guard: Guard) -> tuple[ActiveSpan | Any, bool]:
        """The span recording this call, and whether the transport opened it."""
        span = recording_span.get() or request.extensions.get(SPAN_EXTENSION)
        if span is not None:
            return span, False
        own = self.recorder.span(
            guard.name, SpanKind.INTEGRATION, f"{request.method} {path_shape(request.url.path)}"
        )
        own.set_attribute(METHOD, request.method)
        return own, True

    def _prepare(self, request: Any, guard: Guard) -> None:
        timeout = guard.policy.timeout
        if timeout is None:
            return
        given = dict(request.extensions.get("timeout") or {})
        request.extensions["timeout"] = {
            phase: timeout if given.get(phase) is None else min(given[phase], timeout)
            for phase in _TIMEOUTS
        }

    def _idempotent(self, request: Any, guard: Guard) -> bool:
        stated = guard.policy.retry.idempotent
        return request.method in IDEMPOTENT_METHODS if stated is None else stated

    def _key(self, request: Any, guard: Guard) -> str | None:
        if not guard.policy.fallback.cache:
            return None
        return default_key((request.method, str(request.url), request.content), {})

    def _reads_whole(self, guard: Guard) -> bool:
        return guard.policy.fallback.cache or guard.tokens is not None

    def _failing(self, guard: Guard, response: Any) -> bool:
        status = response.status_code
        policy = guard.policy
        return status in policy.retry.statuses or status in policy.refresh_on

    def _refresh(self, guard: Guard, request: Any) -> Any:
        hook = guard.hooks.refresh
        if hook is None:
            return None

        def refreshed(token: Any) -> Any:
            if isinstance(token, str) and token:
                request.headers["Authorization"] = f"Bearer {token}"
            return token

        return hook, refreshed

    def _fallback(self, guard: Guard, request: Any) -> Any:
        hook = guard.hooks.fallback
        return None if hook is None else functools.partial(hook, request)

    def _finish(
        self, span: Any, own: bool, record: CallRecord, response: Any | None, error: Any
    ) -> None:
        try:
            record.write(span)
            if own:
                if response is not None:
                    span.set_attribute(STATUS_CODE, response.status_code)
                    if response.status_code >= 500:
                        span.set_status(SpanStatus.ERROR)
                if error is not None:
                    span.record_error(error)
                span.end()
        except Exception as internal:
            self.recorder.report_internal_error("recording a resilient request", internal)

    def _response(self, request: Any, result: Any) -> Any:
        if isinstance(result, dict):
            return _rebuilt(_module_of(request), result, request)
        return result


class BlockingTransport(Transport):
    """Guards what a blocking client sends through ``wrapped``."""

    def handle_request(self, request: Any) -> Any:
        guard = self._guard(request)
        request.read()  # a body read once can be sent again
        self._prepare(request, guard)
        record = CallRecord()
        span, own = self._span(request, guard)
        reads_whole = self._reads_whole(guard)

        def attempt() -> Any:
            response = self._wrapped.handle_request(request)
            if reads_whole or self._failing(guard, response):
                try:
                    body = b"".join(response.iter_raw())
                finally:
                    response.close()
                captured = _captured(response, body)
                if self._failing(guard, response):
                    raise StatusFailure(_rebuilt(_module_of(request), captured, request))
                return captured
            return response

        refresh = self._refresh(guard, request)
        response = error = None
        try:
            with recorded_by(span):
                result = guard.run(
                    attempt,
                    record,
                    self._key(request, guard),
                    self._idempotent(request, guard),
                    self._fallback(guard, request),
                    None if refresh is None else lambda: refresh[1](refresh[0]()),
                )
            response = self._response(request, result)
        except StatusFailure as failed:
            response = failed.response  # retries spent: the client sees the last answer
        except BaseException as raised:
            error = raised
            raise
        finally:
            self._finish(span, own, record, response, error)
        return response

    def close(self) -> None:
        self._wrapped.close()

    def __enter__(self) -> Self:
        self._wrapped.__enter__()
        return self

    def __exit__(self, *details: Any) -> None:
        self._wrapped.__exit__(*details)


class AsyncTransport(Transport):
    """Guards what an async client sends through ``wrapped``."""

    async def handle_async_request(self, request: Any) -> Any:
        guard = self._guard(request)
        await request.aread()
        self._prepare(request, guard)
        record = CallRecord()
        span, own = self._span(request, guard)
        reads_whole = self._reads_whole(guard)

        async def attempt() -> Any:
            response = await self._wrapped.handle_async_request(request)
            if reads_whole or self._failing(guard, response):
                try:
                    body = b"".join([chunk async for chunk in response.aiter_raw()])
                finally:
                    await response.aclose()
                captured = _captured(response, body)
                if self._failing(guard, response):
                    raise StatusFailure(_rebuilt(_module_of(request), captured, request))
                return captured
            return response

        refresh = self._refresh(guard, request)

        async def refreshing() -> Any:
            hook, apply = refresh
            token = hook()
            if hasattr(token, "__await__"):
                token = await token
            return apply(token)

        response = error = None
        try:
            with recorded_by(span):
                result = await guard.run_async(
                    attempt,
                    record,
                    self._key(request, guard),
                    self._idempotent(request, guard),
                    self._fallback(guard, request),
                    None if refresh is None else refreshing,
                )
            response = self._response(request, result)
        except StatusFailure as failed:
            response = failed.response
        except BaseException as raised:
            error = raised
            raise
        finally:
            self._finish(span, own, record, response, error)
        return response

    async def aclose(self) -> None:
        await self._wrapped.aclose()

    async def __aenter__(self) -> Self:
        await self._wrapped.__aenter__()
        return self

    async def __aexit__(self, *details: Any) -> None:
        await self._wrapped.__aexit__(*details)
