import random

import pytest

from watchkeeper.model.sketch import RELATIVE_ACCURACY, LatencySketch, bucket_index


def exact_quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("q", [0.5, 0.9, 0.95, 0.99])
def test_quantiles_within_two_percent_of_exact(seed: int, q: float) -> None:
    rng = random.Random(seed)
    values = [rng.lognormvariate(-3, 1.5) for _ in range(20_000)]
    sketch = LatencySketch.of(values)
    estimate = sketch.quantile(q)
    assert estimate is not None
    assert abs(estimate - exact_quantile(values, q)) / exact_quantile(values, q) <= 0.02


def test_merging_parts_equals_sketching_the_whole() -> None:
    rng = random.Random(7)
    parts = [[rng.expovariate(20) for _ in range(1_000)] for _ in range(12)]
    whole = LatencySketch.of(value for part in parts for value in part)
    merged = LatencySketch()
    for part in parts:
        merged.merge_bytes(LatencySketch.of(part).to_bytes())
    assert merged == whole
    assert merged.count == 12_000


def test_serialization_round_trip_and_single_adds() -> None:
    sketch = LatencySketch()
    for value in (0.0, 1e-9, 0.001, 0.25, 4.0, 3600.0):
        sketch.add(value)
    restored = LatencySketch.from_bytes(sketch.to_bytes())
    assert restored == sketch
    assert restored.count == 6
    assert restored.quantile(1.0) == pytest.approx(3600.0, rel=RELATIVE_ACCURACY)
    assert restored.quantile(0.0) == pytest.approx(1e-6)


def test_empty_sketch_and_bad_quantile() -> None:
    sketch = LatencySketch()
    assert sketch.quantile(0.5) is None
    assert LatencySketch.from_bytes(sketch.to_bytes()).count == 0
    with pytest.raises(ValueError, match="between 0 and 1"):
        sketch.quantile(1.5)


def test_bucket_index_is_monotonic() -> None:
    values = sorted(random.Random(3).uniform(1e-6, 100) for _ in range(1_000))
    indexes = [bucket_index(value) for value in values]
    assert indexes == sorted(indexes)
