"""A mergeable latency sketch with bounded relative error (DDSketch's log-bucket mapping).

A value ``v`` falls in bucket ``ceil(log(v) / log(gamma))`` with ``gamma = (1 + a) / (1 - a)``;
reporting a bucket's midpoint is then within ``a`` of every value in it. With ``a = 1 %`` the
sketch stays well inside the 2 % promised for percentiles, and two sketches merge by adding
counts, so minutes, hours and instances combine without keeping raw values.

Values are seconds. Those at or below ``MIN_VALUE`` (one microsecond) share bucket 0, which keeps
indexes non-negative and the serialized form small: an offset, a length and dense counts.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

RELATIVE_ACCURACY = 0.01
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(GAMMA)
MIN_VALUE = 1e-6
_MIN_INDEX = math.ceil(math.log(MIN_VALUE) / _LOG_GAMMA)
_HEADER = struct.Struct("<iI")

Counts = npt.NDArray[np.uint64]
Indexes = npt.NDArray[np.int64]


def bucket_index(value: float) -> int:
    """The bucket of a value: 0 for anything at or below one microsecond."""
    if value <= MIN_VALUE:
        return 0
    return math.ceil(math.log(value) / _LOG_GAMMA) - _MIN_INDEX


def bucket_indexes(values: npt.ArrayLike) -> Indexes:
    """:func:`bucket_index` of every value, in one vectorised pass. Raises ValueError for NaN or
    an infinite latency, which has no bucket (minus infinity is at or below one microsecond)."""
    array = np.maximum(np.asarray(values, dtype=np.float64), MIN_VALUE)
    if not np.isfinite(array).all():
        raise ValueError("a latency must be a finite number of seconds")
    return np.ceil(np.log(array) / _LOG_GAMMA).astype(np.int64) - _MIN_INDEX


def bucket_value(index: int) -> float:
    """The representative value of a bucket: within the relative accuracy of all its members."""
    if index <= 0:
        return MIN_VALUE
    return float(2 * GAMMA ** (index + _MIN_INDEX) / (GAMMA + 1))


class LatencySketch:
    """Counts per log bucket, dense from the lowest bucket seen to the highest."""

    __slots__ = ("_counts", "_offset")

    def __init__(self) -> None:
        self._offset = 0
        self._counts: Counts = np.zeros(0, dtype=np.uint64)

    @classmethod
    def of(cls, values: Iterable[float]) -> LatencySketch:
        sketch = cls()
        sketch.add_many(list(values))
        return sketch

    @property
    def count(self) -> int:
        return int(self._counts.sum())

    def add(self, value: float) -> None:
        self._add_dense(bucket_index(value), np.ones(1, dtype=np.uint64))

    def add_many(self, values: Sequence[float]) -> None:
        """Add a batch of values in one vectorised pass (the flush worker's path)."""
        if not values:
            return
        indexes = bucket_indexes(values)
        low = int(indexes.min())
        dense = np.bincount(indexes - low).astype(np.uint64)
        self._add_dense(low, dense)

    @classmethod
    def of_groups(cls, groups: Indexes, indexes: Indexes, count: int) -> list[LatencySketch]:
        """One sketch per group ``0 … count - 1``: value ``i``, of bucket ``indexes[i]``, belongs
        to group ``groups[i]``, and every group has a value.

        One sort for all groups rather than a pass per group: the flush worker sketches a few
        hundred groups per batch.
        """
        low = int(indexes.min())
        width = int(indexes.max()) - low + 1
        pairs, counts = np.unique(groups * width + (indexes - low), return_counts=True)
        owners = pairs // width
        buckets = pairs - owners * width + low
        bounds = np.searchsorted(owners, np.arange(count + 1)).tolist()
        sketches = []
        for group in range(count):
            first, last = bounds[group], bounds[group + 1]
            present = buckets[first:last]
            offset = int(present[0])
            dense = np.zeros(int(present[-1]) - offset + 1, dtype=np.uint64)
            dense[present - offset] = counts[first:last]
            sketch = cls()
            sketch._offset, sketch._counts = offset, dense
            sketches.append(sketch)
        return sketches

    def merge(self, other: LatencySketch) -> None:
        if other._counts.size:
            self._add_dense(other._offset, other._counts)

    def merge_bytes(self, data: bytes) -> None:
        """Merge a serialized sketch without building an intermediate object."""
        offset, length = _HEADER.unpack_from(data)
        if length:
            counts = np.frombuffer(data, dtype=np.uint64, count=length, offset=_HEADER.size)
            self._add_dense(offset, counts)

    def _add_dense(self, offset: int, counts: Counts) -> None:
        if not self._counts.size:
            self._offset = offset
            self._counts = counts.copy()
            return
        low = min(self._offset, offset)
        high = max(self._offset + self._counts.size, offset + counts.size)
        if low < self._offset or high > self._offset + self._counts.size:
            widened = np.zeros(high - low, dtype=np.uint64)
            start = self._offset - low
            widened[start : start + self._counts.size] = self._counts
            self._counts = widened
            self._offset = low
        start = offset - self._offset
        self._counts[start : start + counts.size] += counts

    def quantile(self, q: float) -> float | None:
        """The value at quantile ``q`` (0…1), or ``None`` for an empty sketch."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must be between 0 and 1, got {q}")
        total = self.count
        if not total:
            return None
        rank = q * (total - 1)
        position = int(np.searchsorted(np.cumsum(self._counts), rank, side="right"))
        return bucket_value(self._offset + min(position, self._counts.size - 1))

    def to_bytes(self) -> bytes:
        nonzero = np.flatnonzero(self._counts)
        if not nonzero.size:
            return _HEADER.pack(0, 0)
        first, last = int(nonzero[0]), int(nonzero[-1]) + 1
        trimmed = self._counts[first:last]
        return _HEADER.pack(self._offset + first, trimmed.size) + trimmed.tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> LatencySketch:
        sketch = cls()
        sketch.merge_bytes(data)
        return sketch

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LatencySketch):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()

    __hash__ = None  # type: ignore[assignment]
