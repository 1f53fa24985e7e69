"""Counter-based random draws: every value is a pure function of (seed, index, stream).

A sequential generator would make an entity's attributes depend on how many
draws came before it, i.e. on how the catalog is cut into chunks. Hashing the
index instead lets any chunk be generated on its own, lets an entity look up
another one's attributes (a sequel reads its original's title), and makes
chunked and one-shot generation agree exactly.
"""

from __future__ import annotations

import zlib

import numpy as np

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


def _mix_int(x: int) -> int:
    """splitmix64's finaliser on a Python int (for keys: numpy scalars warn on overflow)."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on a uint64 array (wrapping arithmetic)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def key(seed: int, stream: str) -> int:
    """A 64-bit key for one named stream of one seed."""
    return _mix_int((seed & _MASK) ^ _mix_int(zlib.crc32(stream.encode()) + _GOLDEN))


class Draws:
    """Independent uniform streams over a fixed array of indices (entity, block, ...)."""

    def __init__(self, seed: int, index: np.ndarray):
        self.seed = seed
        self.index = np.asarray(index, dtype=np.uint64)

    def bits(self, stream: str) -> np.ndarray:
        """64 random bits per index."""
        return _mix(self.index * np.uint64(_GOLDEN) + np.uint64(key(self.seed, stream)))

    def uniform(self, stream: str) -> np.ndarray:
        """Floats in [0, 1)."""
        return (self.bits(stream) >> np.uint64(11)).astype(np.float64) * 2.0**-53

    def below(self, stream: str, n: int | np.ndarray) -> np.ndarray:
        """Integers in [0, n) (n may vary per index)."""
        return (self.uniform(stream) * n).astype(np.int64)

    def chance(self, stream: str, p: float | np.ndarray) -> np.ndarray:
        """True with probability p."""
        return self.uniform(stream) < p

    def weighted(self, stream: str, weights: tuple[float, ...]) -> np.ndarray:
        """Index into ``weights``, drawn proportionally to them."""
        cdf = np.cumsum(weights, dtype=np.float64)
        return np.searchsorted(cdf / cdf[-1], self.uniform(stream), side="right").astype(np.int64)
