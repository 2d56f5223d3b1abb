from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from watchkeeper.config import load_settings
from watchkeeper.instrumentation.decorators import agent, integration, monitor, tool
from watchkeeper.instrumentation.validation import MinimumScore, validators
from watchkeeper.model.events import Span, SpanKind, SpanStatus
from watchkeeper.recording.default import set_recorder
from watchkeeper.recording.recorder import Recorder
from watchkeeper.recording.spans import current_span
from watchkeeper.testing import MemorySink
from watchkeeper.testing.plugin import RecorderUnderTest


def test_sync_async_and_generators_are_timed_and_return_results(
    watchkeeper_recorder: RecorderUnderTest,
) -> None:
    recorder = watchkeeper_recorder

    @monitor("render", recorder=recorder)
    def render(text: str) -> str:
        return text.upper()

    @monitor("fetch", recorder=recorder)
    async def fetch() -> int:
        await asyncio.sleep(0.01)
        return 7

    @monitor("words", recorder=recorder)
    def words() -> Iterator[str]:
        yield from ("a", "b")

    @monitor("tokens", recorder=recorder)
    async def tokens() -> AsyncIterator[str]:
        for token in ("x", "y", "z"):
            await asyncio.sleep(0.01)
            yield token

    async def stream() -> list[str]:
        return [token async for token in tokens()]

    assert render("hi") == "HI"
    assert asyncio.run(fetch()) == 7
    assert list(words()) == ["a", "b"]
    assert asyncio.run(stream()) == ["x", "y", "z"]
    spans = {span.name: span for span in recorder.recorded_spans()}
    assert set(spans) == {"render", "fetch", "words", "tokens"}
    assert spans["fetch"].duration >= 0.009
    assert spans["tokens"].duration >= 0.029  # the whole iteration, not just creating it


def test_monitor_without_a_name_takes_the_function_s(
    watchkeeper_recorder: RecorderUnderTest,
) -> None:
    @monitor
    def plain() -> int:
        return 1

    @monitor(recorder=watchkeeper_recorder)
    async def called() -> int:
        return 2

    set_recorder(watchkeeper_recorder)
    try:
        assert plain() + asyncio.run(called()) == 3
    finally:
        set_recorder(None)
    names = sorted(span.name for span in watchkeeper_recorder.recorded_spans())
    assert names == [
        "test_monitor_without_a_name_takes_the_function_s.<locals>.called",
        "test_monitor_without_a_name_takes_the_function_s.<locals>.plain",
    ]


def test_a_generator_left_early_is_not_an_error(watchkeeper_recorder: RecorderUnderTest) -> None:
    @monitor("pages", recorder=watchkeeper_recorder)
    def pages() -> Iterator[int]:
        yield from range(10)

    for page in pages():
        if page == 2:
            break
    (span,) = watchkeeper_recorder.recorded_spans()
    assert span.status is SpanStatus.OK


def test_a_generator_s_span_is_current_only_while_its_own_code_runs(
    watchkeeper_recorder: RecorderUnderTest,
) -> None:
    recorder = watchkeeper_recorder

    @monitor("chunks", recorder=recorder)
    def chunks() -> Iterator[int]:
        for number in range(2):
            with monitor("fetch chunk", recorder=recorder):
                pass
            with monitor("held across a yield", recorder=recorder):
                yield number
                with monitor("after resuming", recorder=recorder):
                    pass

    @monitor("tokens", recorder=recorder)
    async def tokens() -> AsyncIterator[int]:
        for number in range(2):
            await asyncio.sleep(0)
            with monitor("next token", recorder=recorder):
                yield number

    async def consume() -> None:
        with recorder.span("stream request"):
            async for _ in tokens():
                with monitor("send to client", recorder=recorder):
                    await asyncio.sleep(0)

    with recorder.span("request"):
        for _ in chunks():
            with monitor("use chunk", recorder=recorder):
                pass
    asyncio.run(consume())

    spans = recorder.recorded_spans()
    by_name: dict[str, list[Span]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    ((request,),) = (by_name["request"],)
    ((generator,),) = (by_name["chunks"],)
    assert generator.parent_id == request.span_id
    # The caller's work between steps belongs to the caller, not to the generator.
    assert {span.parent_id for span in by_name["use chunk"]} == {request.span_id}
    # The generator's own work, even after it resumed inside a span it held, is its own.
    assert {span.parent_id for span in by_name["fetch chunk"]} == {generator.span_id}
    assert {span.parent_id for span in by_name["held across a yield"]} == {generator.span_id}
    held = {span.span_id for span in by_name["held across a yield"]}
    assert {span.parent_id for span in by_name["after resuming"]} <= held
    assert len(by_name["after resuming"]) == 2
    ((stream_request,),) = (by_name["stream request"],)
    ((stream,),) = (by_name["tokens"],)
    assert stream.parent_id == stream_request.span_id
    assert {span.parent_id for span in by_name["send to client"]} == {stream_request.span_id}
    assert {span.parent_id for span in by_name["next token"]} == {stream.span_id}


def test_a_generator_closed_early_ends_its_span_once(
    watchkeeper_recorder: RecorderUnderTest,
) -> None:
    @monitor("tokens", recorder=watchkeeper_recorder)
    async def tokens() -> AsyncIterator[int]:
        for number in range(10):
            yield number

    async def first_two() -> list[int]:
        taken = []
        stream = tokens()
        async for number in stream:
            taken.append(number)
            if number == 1:
                break
        await stream.aclose()  # type: ignore[attr-defined]
        return taken

    assert asyncio.run(first_two()) == [0, 1]
    (span,) = watchkeeper_recorder.recorded_spans()
    assert span.status is SpanStatus.OK


def test_a_generator_s_error_passes_through_and_is_recorded_on_its_span(
    watchkeeper_recorder: RecorderUnderTest,
) -> None:
    page_error, token_error = ConnectionError("page feed down"), TimeoutError("stream stalled")

    @monitor("pages", recorder=watchkeeper_recorder)
    def pages() -> Iterator[int]:
        yield 1
        raise page_error

    @monitor("tokens", recorder=watchkeeper_recorder)
    async def tokens() -> AsyncIterator[int]:
        yield 1
        raise token_error

    async def all_tokens() -> list[int]:
        return [token async for token in tokens()]

    with pytest.raises(ConnectionError) as page_raised:
        list(pages())
    with pytest.raises(TimeoutError) as token_raised:
        asyncio.run(all_tokens())
    assert (page_raised.value, token_raised.value) == (page_error, token_error)
    assert current_span.get() is None
    spans = {span.name: span for span in watchkeeper_recorder.recorded_spans()}
    assert {name: (span.status, span.error_type) for name, span in spans.items()} == {
        "pages": (SpanStatus.ERROR, "ConnectionError"),
        "tokens": (SpanStatus.ERROR, "TimeoutError"),
    }


def test_what_the_caller_throws_into_a_generator_reaches_its_code(
    watchkeeper_recorder: RecorderUnderTest,
) -> None:
    @monitor("pages", recorder=watchkeeper_recorder)
    def pages() -> Generator[str, None, None]:
        try:
            yield "first"
        except TimeoutError:
            yield "retried"

    @monitor("tokens", recorder=watchkeeper_recorder)
    async def tokens() -> AsyncGenerator[str, None]:
        try:
            yield "first"
        except TimeoutError:
            yield "retried"

    async def retried_token() -> str:
        stream = tokens()
        await anext(stream)
        retried = await stream.athrow(TimeoutError())
        await stream.aclose()
        return retried

    stream = pages()
    next(stream)
    assert stream.throw(TimeoutError()) == "retried"
    stream.close()
    assert asyncio.run(retried_token()) == "retried"
    spans = watchkeeper_recorder.recorded_spans()
    assert sorted((span.name, span.status) for span in spans) == [
        ("pages", SpanStatus.OK),
        ("tokens", SpanStatus.OK),
    ]


def test_errors_pass_through_unchanged_and_are_recorded(
    watchkeeper_recorder: RecorderUnderTest,
) -> None:
    error = ConnectionError("speech service down")

    @integration("elevenlabs", "tts", recorder=watchkeeper_recorder)
    def speak() -> bytes:
        raise error

    with pytest.raises(ConnectionError) as raised:
        speak()
    assert raised.value is error
    (span,) = watchkeeper_recorder.recorded_spans(kind=SpanKind.INTEGRATION)
    assert (span.status, span.error_type, span.operation) == (
        SpanStatus.ERROR,
        "ConnectionError",
        "tts",
    )


def test_a_cancelled_call_is_cancelled_not_failed(watchkeeper_recorder: RecorderUnderTest) -> None:
    recorder = watchkeeper_recorder

    async def client_goes_away() -> None:
        started = asyncio.Event()

        @integration("openai", "chat", recorder=recorder)
        async def ask() -> None:
            with monitor("render", recorder=recorder):
                started.set()
                await asyncio.sleep(60)

        task = asyncio.create_task(ask())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(client_goes_away())
    spans = recorder.recorded_spans()
    assert sorted((span.name, span.status, span.error_type) for span in spans) == [
        ("openai", SpanStatus.CANCELLED, None),
        ("render", SpanStatus.CANCELLED, None),
    ]


SHORT_SLEEP = 0.05
LONG_SLEEP = 0.4


def test_one_object_shared_by_concurrent_tasks_and_threads_times_each_use_alone(
    watchkeeper_recorder: RecorderUnderTest,
) -> None:
    # As a module-level `search = integration("vector-db", "search")` is used by every request.
    shared = integration("vector-db", "search", recorder=watchkeeper_recorder)
    delays = [LONG_SLEEP if index % 2 else SHORT_SLEEP for index in range(16)]

    async def use_in_task(delay: float) -> None:
        with shared as span:
            span.set_attribute("sleep", delay)
            await asyncio.sleep(delay)
            assert current_span.get() is span

    async def tasks() -> None:
        await asyncio.gather(*(use_in_task(delay) for delay in delays))

    def use_in_thread(delay: float) -> None:
        with shared as span:
            span.set_attribute("sleep", delay)
            time.sleep(delay)
            assert current_span.get() is span

    with ThreadPoolExecutor(max_workers=len(delays)) as pool:
        used = [pool.submit(use_in_thread, delay) for delay in delays]
        asyncio.run(tasks())
        for use in used:
            use.result()

    spans = watchkeeper_recorder.recorded_spans(SpanKind.INTEGRATION)
    assert len(spans) == 2 * len(delays)
    short = [span.duration for span in spans if (span.attributes or {})["sleep"] == SHORT_SLEEP]
    long = [span.duration for span in spans if (span.attributes or {})["sleep"] == LONG_SLEEP]
    assert len(short) == len(long) == len(delays)
    # Each span lasts as long as its own block, not as long as another task's.
    assert min(long) >= LONG_SLEEP - 0.01
    assert max(short) < min(long)
    assert all(span.parent_id == 0 for span in spans)


def test_tools_are_counted_on_their_agent(watchkeeper_recorder: RecorderUnderTest) -> None:
    recorder = watchkeeper_recorder
    with agent("planner", recorder=recorder):
        for _ in range(3):
            with tool("search_docs", recorder=recorder):
                pass
    (run,) = recorder.recorded_spans(kind=SpanKind.AGENT)
    assert run.attributes is not None
    assert run.attributes["tool_calls"] == 3
    assert 0 <= run.attributes["tool_seconds"] <= run.duration
    assert len(recorder.recorded_spans(kind=SpanKind.TOOL)) == 3


def test_a_decorated_integration_result_is_validated(
    watchkeeper_recorder: RecorderUnderTest,
) -> None:
    validators.register("retrieval-test", MinimumScore(0.65, field="relevance"))

    @integration("retrieval-test", recorder=watchkeeper_recorder)
    def retrieve(score: float) -> dict[str, float]:
        return {"relevance": score}

    retrieve(0.9)
    retrieve(0.3)
    watchkeeper_recorder.flush()
    results = [
        (result.passed, result.observed) for result in watchkeeper_recorder.memory.validations
    ]
    assert results == [(True, 0.9), (False, 0.3)]


def test_concurrent_calls_of_one_decorator_keep_their_own_spans(
    watchkeeper_recorder: RecorderUnderTest,
) -> None:
    @integration("llm", recorder=watchkeeper_recorder)
    async def call(delay: float) -> float:
        await asyncio.sleep(delay)
        return delay

    async def both() -> list[float]:
        return list(await asyncio.gather(call(0.05), call(0.01)))

    assert asyncio.run(both()) == [0.05, 0.01]
    durations = sorted(span.duration for span in watchkeeper_recorder.recorded_spans())
    assert durations[0] < 0.04 <= durations[1]


def test_disabled_monitoring_still_runs_the_code() -> None:
    sink = MemorySink()
    recorder = Recorder(load_settings(enabled=False), sink=sink).start()

    @integration("openai", recorder=recorder)
    def ask() -> str:
        return "answer"

    with integration("openai", recorder=recorder) as call:
        call.usage(model="m", input_tokens=1)
    assert ask() == "answer"
    recorder.stop()
    assert recorder.stats().recorded == 0


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: integration(42),  # type: ignore[arg-type]
            r"watchkeeper.integration\(\) needs the integration's name as a non-empty string, "
            "got 42",
        ),
        (lambda: integration(""), "non-empty string, got ''"),
        (lambda: tool(None), "needs the tool's name"),  # type: ignore[arg-type]
        (lambda: agent(3.5), "needs the agent's name"),  # type: ignore[arg-type]
        (lambda: monitor("").__enter__(), "needs a name"),
        (lambda: monitor().__enter__(), "used with 'with' needs a name"),
        (lambda: integration("x", operation=5), "operation must be a string or None"),  # type: ignore[arg-type]
        (lambda: monitor("x", kind="tool"), "kind must be a SpanKind"),  # type: ignore[arg-type]
        (lambda: tool("x")(42), "can only decorate a function"),  # type: ignore[arg-type]
    ],
)
def test_bad_arguments_get_clear_type_errors(make: object, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        make()  # type: ignore[operator]
