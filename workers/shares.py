"""Draws by share through quantile lookup tables: one gather per draw instead of a search.

A table maps floor(u * SHARE_TABLE_SIZE) of a uniform u to an index drawn with the given shares (to
1/4096), so a draw costs one gather however many choices there are.
"""

from __future__ import annotations

import numpy as np

from .rng import UNIT_BITS

SHARE_TABLE_SIZE = 1 << 12
_BUCKET_BITS = 12  # UnitSearch: start tables per 2**-12 of the cdf's range


def share_table(shares: tuple[float, ...] | list[float]) -> np.ndarray:
    """int8 table of SHARE_TABLE_SIZE entries: floor(u * size) -> an index drawn with the given shares."""
    cdf = np.cumsum(np.asarray(shares, dtype=np.float64))
    cdf /= cdf[-1]
    centres = (np.arange(SHARE_TABLE_SIZE) + 0.5) / SHARE_TABLE_SIZE
    return np.minimum(np.searchsorted(cdf, centres, side="right"), len(shares) - 1).astype(np.int8)


def draw_by_share(table: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Indices drawn from `table` (from `share_table`) by uniforms `u` in [0, 1)."""
    return np.asarray(table[(u * SHARE_TABLE_SIZE).astype(np.intp)])


def draw_lane(table: np.ndarray, word: np.ndarray, lane: int) -> np.ndarray:
    """`draw_by_share(table, rng.unit(word, lane))` from the bits: unit's 21 bits times 4096 / 2**21, floored,
    are its top 12 bits (exact in floating point), so no float pass."""
    return np.asarray(table[((word >> np.uint64(21 * lane + 9)) & np.uint64(SHARE_TABLE_SIZE - 1)).astype(np.intp)])


def rest_of(u: np.ndarray, share: float) -> np.ndarray:
    """A uniform in [0, 1) from the part of `u` at or above `share` (after a first choice of chance `share`)."""
    return np.asarray(np.clip((u - share) / (1 - share), 0, 1 - 1e-12))


class UnitSearch:
    """`np.searchsorted(cdf, a + rng.unit(word, lane), side="right")` for integers a >= 0, exactly and about 10x
    faster (a binary search over 2,000 cities misses the cache at every step). The query is q / 2**21 with
    q = a << 21 | rng.unit_bits(word, lane), and cdf <= q / 2**21 exactly when ceil(cdf * 2**21) <= q, so
    it counts integer thresholds: a table per 2**-12 of the range says how many lie below each bucket, and
    passes over the few queries with thresholds inside their bucket (rarely more than one) step past them."""

    def __init__(self, cdf: np.ndarray) -> None:
        thresholds = np.ceil(np.asarray(cdf, dtype=np.float64) * (1 << UNIT_BITS)).astype(np.int64)
        self._thresholds = np.append(thresholds, np.iinfo(np.int64).max)  # a sentinel above every query
        buckets = (int(np.ceil(float(cdf[-1]))) + 1) << _BUCKET_BITS
        bucket_starts = np.arange(buckets, dtype=np.int64) << (UNIT_BITS - _BUCKET_BITS)
        self._below = np.searchsorted(thresholds, bucket_starts, side="right")

    def __call__(self, query: np.ndarray) -> np.ndarray:
        """For int64 queries q (see the class): how many cdf entries are <= q / 2**21, as intp."""
        query = np.asarray(query, dtype=np.int64)
        flat = query.reshape(-1)
        slot = self._below[flat >> (UNIT_BITS - _BUCKET_BITS)]
        more = np.flatnonzero(self._thresholds[slot] <= flat)
        while more.size:
            slot[more] += 1
            more = more[self._thresholds[slot[more]] <= flat[more]]
        return np.asarray(slot.reshape(query.shape))
