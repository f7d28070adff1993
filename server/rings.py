"""The live site as the server sees it: rows drained from every worker's ring.

Connections share one site, the way consumers of one topic share its events: each row goes to exactly
one connection, and a lone connection drains every ring. Everything here runs on the event loop thread,
so the rings have exactly one consumer, as they require.
"""

from __future__ import annotations

import numpy as np

from ..workers.ring import Ring


class SiteRings:
    def __init__(self, rings: list[Ring], row_bytes: int) -> None:
        self.rings = rings
        self.row_bytes = row_bytes
        self._next = 0  # ring to try first, rotated so no ring's sessions starve

    def take(self, count: int) -> tuple[bytearray, int]:
        """Up to `count` rows as one buffer (fewer when the rings run dry), copied out of the rings once.

        The caller stamps the copy, not the ring: the copy is in this core's cache, while the ring's rows
        were just written by another core (stamping them in place cost a cache miss per row).
        """
        views: list[np.ndarray] = []
        taken_from: list[tuple[Ring, int]] = []
        taken = 0
        rings = self.rings
        for step in range(len(rings)):
            ring = rings[(self._next + step) % len(rings)]
            got = 0
            for view in ring.peek(count - taken):
                views.append(view)
                got += len(view)
            if got:
                taken_from.append((ring, got))
                taken += got
            if taken == count:
                break
        self._next = (self._next + 1) % max(1, len(rings))
        # The one copy out of shared memory. bytearray.join allocates without zeroing first (bytearray(n)
        # then a copy wrote every byte twice: ~20 ns a row).
        data = bytearray().join([view.data for view in views])
        for ring, got in taken_from:
            ring.consume(got)  # the views are not used after this: the producer reuses those slots
        return data, taken
