"""Exporting to Arize Phoenix: a real ``phoenix serve`` (from PyPI, in its own virtual
environment) on 127.0.0.1 takes an instrumented app's spans, read back through Phoenix's REST
API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.otlp.exporting import (
    INPUT_TOKENS,
    MODEL,
    OUTPUT_TOKENS,
    SPANS_PER_PLAN,
    fake_ai,
    sending,
)
from tests.support.phoenix import Phoenix, install_phoenix
from tests.support.waiting import wait_until

ARRIVAL_SECONDS = 120.0
"""Phoenix writes what it accepted from a queue of its own, in the background."""

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Phoenix]:
    problem = install_phoenix()
    if problem is not None:
        pytest.skip(f"Arize Phoenix cannot be installed here: {problem}")
    phoenix = Phoenix(tmp_path_factory.mktemp("phoenix"))
    try:
        yield phoenix.wait_ready()
    finally:
        phoenix.stop()


def test_phoenix_shows_the_request_and_its_ai_call_as_recorded(
    phoenix: Phoenix, tmp_path: Path
) -> None:
    with fake_ai() as ai, sending(tmp_path, phoenix.url, ai) as sender:
        trace_id = sender.plan()
        wait_until(lambda: sender.exporter.exported == SPANS_PER_PLAN, what="the spans exported")
        sent = {span.name: span for span in sender.stored(trace_id)}
    trace_hex = f"{trace_id:032x}"
    arrived: list[dict[str, Any]] = []

    def all_arrived() -> bool:
        arrived[:] = phoenix.spans(trace_hex)
        return len(arrived) == SPANS_PER_PLAN

    wait_until(all_arrived, ARRIVAL_SECONDS, "the trace in Phoenix")
    request, call = sent["GET /plan"], sent["openai"]
    shown = {span["context"]["span_id"]: span for span in arrived}
    assert shown.keys() == {span.span_id for span in sent.values()}
    for span in arrived:
        assert span["context"]["trace_id"] == trace_hex
    root, llm = shown[request.span_id], shown[call.span_id]
    assert root["name"] == "GET /plan"
    assert root["parent_id"] is None
    assert (root["attributes"]["http.route"], root["attributes"]["enduser.id"]) == (
        "/plan",
        "user-7",
    )
    # An integration travels under its operation's name, as OpenTelemetry clients name theirs.
    assert llm["name"] == "chat.completions"
    assert llm["parent_id"] == request.span_id
    # Phoenix reads the GenAI conventions: an LLM span with its model and token counts.
    assert llm["span_kind"] == "LLM"
    attributes = llm["attributes"]
    assert attributes["llm.model_name"] == attributes["gen_ai.request.model"] == MODEL
    assert (attributes["llm.token_count.prompt"], attributes["llm.token_count.completion"]) == (
        INPUT_TOKENS,
        OUTPUT_TOKENS,
    )
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["watchkeeper.cost_usd"] == pytest.approx(call.cost)
    failed = next(span for span in arrived if span["name"] == "render")
    assert (failed["status_code"], failed["status_message"]) == ("ERROR", "no template for April")
    assert shown[sent["find-seeds"].span_id]["attributes"]["gen_ai.tool.name"] == "find-seeds"
