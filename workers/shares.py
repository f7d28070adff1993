"""Draws by share through quantile lookup tables: one gather per draw instead of a search.

A table maps floor(u * SHARE_TABLE_SIZE) of a uniform u to an index drawn with the given shares (to
1/4096), so a draw costs one gather however many choices there are.
"""

from __future__ import annotations

import numpy as np

SHARE_TABLE_SIZE = 1 << 12


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
