"""The simulated site as the server sees it: rows drained from every worker's ring.

Connections share one site, the way consumers of one topic share its events: each row goes to exactly
one connection, and a lone connection drains every ring. Everything here runs on the event loop thread,
so the rings have exactly one consumer, as they require.
"""

from __future__ import annotations

import numpy as np

from ..workers.ring import Ring


class SiteFeed:
    def __init__(self, rings: list[Ring], row_bytes: int) -> None:
        self.rings = rings
        self.row_bytes = row_bytes
        self._next = 0  # ring to try first, rotated so no ring's sessions starve

    def take(self, out: np.ndarray, count: int) -> int:
        """Move up to `count` rows into `out`; returns how many (fewer when the rings run dry)."""
        taken = 0
        rings = self.rings
        for step in range(len(rings)):
            ring = rings[(self._next + step) % len(rings)]
            taken += ring.read_into(out[taken:], count - taken)
            if taken == count:
                break
        self._next = (self._next + 1) % max(1, len(rings))
        return taken

    def available(self) -> int:
        return sum(ring.fill() for ring in self.rings)
