"""What AI calls cost, computed on the flush worker from genai-prices' price data.

Pricing happens after the fact, a batch at a time, so the request path only counts tokens. A
model nobody has a price for keeps its tokens and gets ``cost=None`` with ``cost_status=unknown``:
an unknown price must show up as unknown, never as a free call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from genai_prices import Usage, data_snapshot

from watchkeeper.config import ModelPrice
from watchkeeper.model.events import Span
from watchkeeper.recording.attributes import COST_STATUS
from watchkeeper.recording.recorder import Recorder

UNKNOWN = "unknown"
CACHE_LIMIT = 4_096

Pricer = Callable[[int, int, float], float]
"""(input tokens, output tokens, call start as epoch seconds) -> US dollars."""


class PriceEnricher:
    """Fills ``cost`` on spans that used tokens and have none; ``overrides`` win over the data.

    ``overrides`` maps a model name (case-insensitive) to its price and also prices models
    genai-prices does not know, such as fine-tunes and self-hosted ones.
    """

    def __init__(self, overrides: Mapping[str, ModelPrice] | None = None) -> None:
        self._overrides = {model.lower(): price for model, price in (overrides or {}).items()}
        self._pricers: dict[tuple[str, str], Pricer | None] = {}

    def __call__(self, spans: Sequence[Span]) -> None:
        for span in spans:
            if span.cost is not None or not (span.input_tokens or span.output_tokens):
                continue
            pricer = self.pricer(span.name, span.model) if span.model else None
            if pricer is None:
                if span.attributes is None:
                    span.attributes = {}
                span.attributes[COST_STATUS] = UNKNOWN
                continue
            span.cost = pricer(span.input_tokens or 0, span.output_tokens or 0, span.start)

    def pricer(self, provider: str, model: str) -> Pricer | None:
        """How to price ``model`` called through ``provider``; ``None`` when no price is known."""
        key = (provider, model)
        try:
            return self._pricers[key]
        except KeyError:
            pass
        pricer = self._find(provider, model)
        if len(self._pricers) >= CACHE_LIMIT:
            self._pricers.clear()
        self._pricers[key] = pricer
        return pricer

    def _find(self, provider: str, model: str) -> Pricer | None:
        override = self._overrides.get(model.lower())
        if override is not None:
            return _flat_rate(override)
        snapshot = data_snapshot.get_snapshot()
        try:
            found = snapshot.find_provider_model(model, None, provider, None)
        except LookupError:
            # The span is named after the integration, which is not always genai-prices'
            # provider id (e.g. "gemini" vs "google"): let the model name find its provider.
            try:
                found = snapshot.find_provider_model(model, None, None, None)
            except LookupError:
                return None
        provider_info, model_info = found

        def price(input_tokens: int, output_tokens: int, start: float) -> float:
            calculation = model_info.calc_price(
                Usage(input_tokens=input_tokens, output_tokens=output_tokens),
                provider_info,
                genai_request_timestamp=datetime.fromtimestamp(start, UTC),
            )
            return float(calculation.total_price)

        return price


def _flat_rate(price: ModelPrice) -> Pricer:
    def cost(input_tokens: int, output_tokens: int, start: float) -> float:
        return (
            input_tokens * price.input_per_million + output_tokens * price.output_per_million
        ) / 1_000_000

    return cost


def install_pricing(recorder: Recorder) -> None:
    """Give ``recorder`` a :class:`PriceEnricher` from its settings, unless it has one."""
    if not any(isinstance(enricher, PriceEnricher) for enricher in recorder.enrichers):
        recorder.enrichers.append(PriceEnricher(recorder.settings.model_prices))
