import time
from collections.abc import Iterator

import genai_prices
import openai
import pytest

from tests.instrumentation.ai_support import integration_spans
from watchkeeper.config import ConfigurationError, ModelPrice, load_settings
from watchkeeper.instrumentation.openai import instrument_openai, uninstrument_openai
from watchkeeper.instrumentation.pricing import PriceEnricher, install_pricing
from watchkeeper.model.events import Span, SpanKind
from watchkeeper.testing.fake_ai import FakeAIServer
from watchkeeper.testing.plugin import RecorderUnderTest


def llm_span(
    model: str | None,
    input_tokens: int | None = 1_000,
    output_tokens: int | None = 500,
    name: str = "openai",
    cost: float | None = None,
) -> Span:
    return Span(
        SpanKind.INTEGRATION,
        name,
        time.time(),
        0.5,
        trace_id=1,
        span_id=2,
        model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost=cost,
    )


def genai_cost(model: str, provider: str, input_tokens: int, output_tokens: int) -> float:
    usage = genai_prices.Usage(input_tokens=input_tokens, output_tokens=output_tokens)
    return float(genai_prices.calc_price(usage, model, provider_id=provider).total_price)


def test_known_models_are_priced_from_genai_prices() -> None:
    spans = [
        llm_span("gpt-4o-mini"),
        llm_span("claude-haiku-4-5", name="anthropic"),
        # Named after an integration that is not a genai-prices provider: the model decides.
        llm_span("gpt-4o-mini", name="my-gateway"),
    ]
    PriceEnricher()(spans)

    openai_cost = genai_cost("gpt-4o-mini", "openai", 1_000, 500)
    assert spans[0].cost == pytest.approx(openai_cost)
    assert spans[1].cost == pytest.approx(genai_cost("claude-haiku-4-5", "anthropic", 1_000, 500))
    assert spans[2].cost == pytest.approx(openai_cost)
    assert all(span.attributes is None for span in spans)


def test_unknown_model_or_no_model_is_unknown_never_free() -> None:
    unknown, unnamed = llm_span("in-house-model-7"), llm_span(None)
    PriceEnricher()([unknown, unnamed])

    for span in (unknown, unnamed):
        assert span.cost is None
        assert span.cost_unknown
        assert span.attributes == {"cost_status": "unknown"}
    assert unknown.input_tokens == 1_000


def test_given_costs_and_spans_without_tokens_are_left_alone() -> None:
    priced = llm_span("gpt-4o-mini", cost=0.25)
    no_tokens = llm_span("gpt-4o-mini", input_tokens=None, output_tokens=None)
    PriceEnricher()([priced, no_tokens])

    assert priced.cost == 0.25
    assert no_tokens.cost is None
    assert no_tokens.attributes is None


def test_overrides_win_and_price_unknown_models() -> None:
    enricher = PriceEnricher(
        {
            "GPT-4o-mini": ModelPrice(input_per_million=10, output_per_million=20),
            "in-house-model-7": ModelPrice(input_per_million=1, output_per_million=2),
        }
    )
    known, custom = llm_span("gpt-4o-mini"), llm_span("in-house-model-7")
    enricher([known, custom])

    assert known.cost == pytest.approx((1_000 * 10 + 500 * 20) / 1e6)
    assert custom.cost == pytest.approx((1_000 * 1 + 500 * 2) / 1e6)


def test_lookups_are_cached_per_provider_and_model() -> None:
    enricher = PriceEnricher()
    first = enricher.pricer("openai", "gpt-4o-mini")
    assert first is not None
    assert enricher.pricer("openai", "gpt-4o-mini") is first
    assert enricher.pricer("azure-openai", "gpt-4o-mini") is not first
    assert enricher.pricer("openai", "nope-1") is None


def test_model_prices_setting_is_typed_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "WATCHKEEPER_MODEL_PRICES",
        '{"in-house-model-7": {"input_per_million": 0.5, "output_per_million": 1.5}}',
    )
    assert load_settings().model_prices == {
        "in-house-model-7": ModelPrice(input_per_million=0.5, output_per_million=1.5)
    }
    monkeypatch.setenv("WATCHKEEPER_MODEL_PRICES", '{"m": {"input_per_million": -1}}')
    with pytest.raises(ConfigurationError, match="WATCHKEEPER_MODEL_PRICES"):
        load_settings()


def test_pricing_is_installed_once(watchkeeper_recorder: RecorderUnderTest) -> None:
    install_pricing(watchkeeper_recorder)
    install_pricing(watchkeeper_recorder)
    enrichers = watchkeeper_recorder.enrichers
    assert sum(isinstance(enricher, PriceEnricher) for enricher in enrichers) == 1


class PricedRecorder(RecorderUnderTest):
    def __init__(self) -> None:
        super().__init__()
        self.settings = load_settings(
            flush_interval=0.05,
            raise_internal_errors=True,
            model_prices={"gpt-4o-mini": {"input_per_million": 100, "output_per_million": 200}},
        )


@pytest.fixture
def priced_recorder() -> Iterator[PricedRecorder]:
    recorder = PricedRecorder()
    recorder.start()
    try:
        yield recorder
    finally:
        uninstrument_openai()
        recorder.stop()


def test_override_from_settings_prices_a_recorded_call(priced_recorder: PricedRecorder) -> None:
    instrument_openai(priced_recorder)
    with FakeAIServer(input_tokens=1_000, output_tokens=10) as server:
        client = openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )

    (span,) = integration_spans(priced_recorder, 1)
    assert span.cost == pytest.approx((1_000 * 100 + 10 * 200) / 1e6)
