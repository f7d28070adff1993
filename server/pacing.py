"""Per-connection pacing against absolute deadlines, with an injected clock (pure: no I/O, no sleeping).

Event k (0-based) of a stream is due at `start + k / rate`: the first goes out at once, so a client sees
bytes immediately at any rate. Each tick the stream sends every event that has come due, then sleeps until
the next one is due (but at least one tick later), so errors never accumulate and event loops' timer
resolution (about 1 ms, sometimes early) costs nothing. A stream that falls behind (a slow client, a
starved ring) catches up by at most `max_burst_s` worth of events; beyond that its schedule slips forward,
so it never floods a client with a backlog and its event times stay close to the wall clock.
"""

from __future__ import annotations

import math

import numpy as np


class Pacer:
    def __init__(self, rate_eps: float, start_s: float, tick_s: float = 0.01, max_burst_s: float = 0.5) -> None:
        if rate_eps <= 0:
            raise ValueError("rate_eps must be positive")
        self.rate_eps = rate_eps
        self.start_s = start_s
        self.tick_s = tick_s
        self.max_burst = max(1, math.ceil(rate_eps * max_burst_s))
        self.sent = 0

    def due(self, now_s: float) -> int:
        """Events to send now (0 if none has come due). Slips the schedule when too far behind."""
        owed = self.due_by(now_s) - self.sent
        if owed > self.max_burst:
            # Too far behind: forget what cannot be caught up, keeping the schedule's phase.
            self.start_s += (owed - self.max_burst) / self.rate_eps
            owed = self.max_burst
        return max(0, owed)

    def due_by(self, when_s: float) -> int:
        """How many events are due at or before `when_s` since the start (the first is due at start)."""
        if when_s < self.start_s:
            return 0
        # The epsilon keeps float error from delaying an event that is due exactly now.
        return math.floor((when_s - self.start_s) * self.rate_eps + 1e-9) + 1

    def record(self, count: int) -> None:
        self.sent += count

    def event_time_s(self, index: float) -> float:
        """When event `index` (0-based) was due: its timestamp."""
        return self.start_s + index / self.rate_eps

    def event_times_ms(self, count: int, wall_offset_s: float) -> np.ndarray:
        """Timestamps (epoch ms) of the next `count` events; `wall_offset_s` maps the clock to wall time."""
        index = np.arange(self.sent, self.sent + count, dtype=np.float64)
        return np.floor((wall_offset_s + self.start_s + index / self.rate_eps) * 1000).astype(np.int64)

    def next_wake_s(self, now_s: float, last_index: float = math.inf) -> float:
        """When to run the next tick: when the next event is due, but not sooner than one tick from now,
        unless the stream's last event (`last_index`) is due before that: a short stream ends on time
        instead of waiting out a tick (count=100 at 50,000/s takes 2 ms, not 20)."""
        tick_end = min(now_s + self.tick_s, self.event_time_s(last_index)) if last_index < math.inf else (
            now_s + self.tick_s
        )
        return max(self.event_time_s(self.sent), tick_end)
