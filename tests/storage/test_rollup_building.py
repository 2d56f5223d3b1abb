"""build_rollups: what a batch's spans add to each key, exactly as adding them one by one."""

from __future__ import annotations

import math
import random

import pytest

from tests.support.stores import T0, span
from watchkeeper.model.events import Span, SpanKind, SpanStatus, has_usage
from watchkeeper.model.rollups import (
    HOUR,
    MINUTE,
    Dimension,
    Level,
    RollupDelta,
    RollupKey,
    build_rollups,
)
from watchkeeper.model.sketch import LatencySketch


def _one_by_one(spans: list[Span]) -> dict[RollupKey, RollupDelta]:
    """The rollups' definition, span by span: minute keys per name, organisation and model
    with latency; hours as the sum of their minutes; per user, hourly sums across names."""
    minutes: dict[RollupKey, RollupDelta] = {}
    deltas: dict[RollupKey, RollupDelta] = {}
    for s in spans:
        minute = int(s.start) // MINUTE * MINUTE
        hour = minute - minute % HOUR
        keys = [RollupKey(Level.MINUTE, minute, s.kind.value, s.name, Dimension.NONE, "")]
        if s.org_id:
            keys.append(keys[0]._replace(dimension=Dimension.ORG, value=s.org_id))
        if s.model:
            keys.append(keys[0]._replace(dimension=Dimension.MODEL, value=s.model))
        targets = [minutes.setdefault(key, RollupDelta(sketch=LatencySketch())) for key in keys]
        if s.user_id:
            user = RollupKey(Level.HOUR, hour, s.kind.value, "", Dimension.USER, s.user_id)
            targets.append(deltas.setdefault(user, RollupDelta()))
        for delta in targets:
            delta.count += 1
            delta.errors += s.status is SpanStatus.ERROR
            delta.duration_sum += s.duration
            if delta.sketch is not None:
                delta.sketch.add_many([s.duration])
            if has_usage(s):
                delta.add_usage(s)
    for key, delta in minutes.items():
        deltas[key] = delta
        hour_key = key._replace(level=Level.HOUR, bucket=key.bucket - key.bucket % HOUR)
        if hour_key in deltas:
            deltas[hour_key].merge(delta)
        else:
            deltas[hour_key] = delta.copy()
    return deltas


def _traffic(seed: int, count: int) -> list[Span]:
    rng = random.Random(seed)
    return [
        span(
            T0 - 1_800 + rng.uniform(0, 3 * 3600),  # out of order, across hour boundaries
            rng.choice([0.0, 1e-9, -1.0, float("-inf"), rng.lognormvariate(-3, 2)]),
            kind=rng.choice(list(SpanKind)),
            name=rng.choice(["a", "b", "ü", ""]),
            error=rng.random() < 0.2,
            org_id=rng.choice(["o1", "o2", "", None]),
            user_id=rng.choice([f"u{rng.randrange(40)}", "", None]),
            model=rng.choice(["m1", "m2", None]),
            input_tokens=rng.choice([None, 0, rng.randint(1, 10**6), 2**70]),
            output_tokens=rng.choice([None, rng.randint(1, 500)]),
            cost=rng.choice([None, 0.0, rng.random()]),
        )
        for _ in range(count)
    ]


@pytest.mark.parametrize("seed", range(5))
def test_every_key_sums_its_spans_in_order_and_sketches_every_duration(seed: int) -> None:
    spans = _traffic(seed, 2_000)
    built = build_rollups(spans)
    expected = _one_by_one(spans)
    assert set(built) == set(expected)
    for key, delta in expected.items():
        # Equal as values, floats included: the sums add the same numbers in the same order.
        assert built[key] == delta, key


def test_no_spans_no_rollups() -> None:
    assert build_rollups([]) == {}


@pytest.mark.parametrize("duration", [math.nan, math.inf])
def test_a_duration_without_a_bucket_is_refused(duration: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        build_rollups([span(T0, 0.1), span(T0, duration)])


def test_a_start_that_is_not_a_time_is_refused() -> None:
    with pytest.raises(ValueError, match="NaN"):
        build_rollups([span(math.nan, 0.1)])
