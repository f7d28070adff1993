"""Counter-based randomness: any event's random draws are a pure function of (key, position).

A sequential generator (numpy's PCG64) would force us to generate a stream from its beginning to
reach position K; hashing the position instead lets a worker, a replayed request or a Spark executor
start anywhere. The mixer is SplitMix64's finaliser, a bijection on 64-bit integers, so distinct
inputs give distinct outputs: ids built from it never collide.
"""

from __future__ import annotations

import math

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
# The mixer's constants as 0-d arrays: numpy takes ~1 us less per call with them than with scalars, which
# matters for the chain's many small blocks.
_M1 = np.array(0xBF58476D1CE4E5B9, dtype=np.uint64)
_M2 = np.array(0x94D049BB133111EB, dtype=np.uint64)
_S30, _S27, _S31 = (np.array(shift, dtype=np.uint64) for shift in (30, 27, 31))
UNIT_BITS = 21  # unit's resolution
_U21 = np.uint64((1 << UNIT_BITS) - 1)
_INV_2_21 = 1.0 / (1 << UNIT_BITS)


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser, vectorised. Bijective on uint64; returns a new array."""
    return mix64_in_place(x.copy())


def mix64_in_place(z: np.ndarray) -> np.ndarray:
    """`mix64` overwriting the uint64 array `z`, which it returns."""
    # In-place steps with one scratch array: about twice as fast as the expression form on large blocks.
    # No np.errstate: numpy never warns on integer overflow of arrays (only of scalars), and the context
    # cost ~3 us a call, half of one of these steps on a 4096-row block.
    scratch = np.empty_like(z)
    np.right_shift(z, _S30, out=scratch)
    z ^= scratch
    z *= _M1
    np.right_shift(z, _S27, out=scratch)
    z ^= scratch
    z *= _M2
    np.right_shift(z, _S31, out=scratch)
    z ^= scratch
    return z


def derive_key(*parts: int) -> np.uint64:
    """A 64-bit key from small integers (seed, shard, purpose): each part is mixed in turn."""
    key = np.array([0x243F6A8885A308D3], dtype=np.uint64)
    for part in parts:
        key = mix64(key ^ np.uint64(part & 0xFFFFFFFFFFFFFFFF)) + _GOLDEN
    return np.uint64(key[0])


def hash_positions(key: np.uint64, positions: np.ndarray) -> np.ndarray:
    """One independent 64-bit random word per position (positions as uint64)."""
    return mix64_in_place(scale(positions) ^ key)


def hash_words(keys: tuple[np.uint64, ...], positions: np.ndarray) -> list[np.ndarray]:
    """`hash_positions(key, positions)` for each key, sharing the multiply and mixing in place."""
    return hash_scaled(keys, scale(positions))


def scale(positions: np.ndarray) -> np.ndarray:
    """The positions' first hashing step (positions as uint64): scale(p + d) == scale(p) + scale(d), so a
    caller adding small offsets to fixed positions can scale once and add the scaled offsets."""
    return np.asarray(positions * _GOLDEN)


def hash_scaled(keys: tuple[np.uint64, ...] | np.ndarray, scaled: np.ndarray) -> list[np.ndarray]:
    """`hash_words(keys, positions)` from `scale(positions)`: the keys' words are rows of one array, so the
    mixing is one set of numpy calls for all keys (per-call overhead is most of a small block's cost). Keys
    may come as a uint64 array (a caller hashing many small blocks saves converting the tuple)."""
    z = np.asarray(keys, dtype=np.uint64).reshape((-1,) + (1,) * scaled.ndim) ^ scaled
    return list(mix64_in_place(z))


def unit(word: np.ndarray, lane: int) -> np.ndarray:
    """A uniform float in [0, 1) from 21 bits of `word`; lane 0, 1 or 2 picks which 21 bits."""
    return lane_bits(word, lane).astype(np.float64) * _INV_2_21


def unit_bits(word: np.ndarray, lane: int) -> np.ndarray:
    """The 21 bits behind `unit(word, lane)`, as int64: unit(word, lane) == unit_bits(word, lane) / 2**21."""
    return lane_bits(word, lane).astype(np.int64)


def lane_bits(word: np.ndarray, lane: int) -> np.ndarray:
    """The 21 bits behind `unit(word, lane)`, as uint64 (compare them with `unit_threshold`)."""
    return np.asarray((word >> np.uint64(UNIT_BITS * lane)) & _U21 if lane else word & _U21)


def unit_threshold(share: float) -> np.uint64:
    """The bits b with `lane_bits(word, lane) >= unit_threshold(share)` are those with unit(word, lane) >= share
    (and < it, below): b / 2**21 >= share exactly when b >= ceil(share * 2**21). No float pass."""
    return np.uint64(max(0, math.ceil(share * (1 << UNIT_BITS))))
