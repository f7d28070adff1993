"""What identifies a seeded stream: one definition shared by the server, the Spark source and the report.

Two processes (the server, a Spark executor, the report) holding equal definitions and equal
`ModelConfig`s produce byte-identical events for the same positions.
"""

from __future__ import annotations

from dataclasses import dataclass

from .limits import (
    DEFAULT_EVENT_RATE_EPS,
    DEFAULT_SEED,
    DEFAULT_START_MS,
    MAX_EVENT_RATE_EPS,
    MAX_SEED,
    MAX_SHARD,
    MAX_TIMESTAMP_MS,
)


def check_range(name: str, value: int, low: int, high: int) -> int:
    """`value`, or a ValueError naming `name` and its range."""
    if not low <= value <= high:
        raise ValueError(f"{name} must be in {low}..{high}, got {value}")
    return value


@dataclass(frozen=True)
class StreamDefinition:
    """A seeded stream: its content (seed, shard) and its event time (start_ms, event_rate_eps).

    Position k has event time `start_ms + floor(k * 1000 / event_rate_eps)`.
    """

    seed: int = DEFAULT_SEED
    shard: int = 0
    start_ms: int = DEFAULT_START_MS
    event_rate_eps: int = DEFAULT_EVENT_RATE_EPS

    def __post_init__(self) -> None:
        check_range("seed", self.seed, 0, MAX_SEED)
        check_range("shard", self.shard, 0, MAX_SHARD)
        check_range("start_ms", self.start_ms, 0, MAX_TIMESTAMP_MS)
        check_range("event_rate", self.event_rate_eps, 1, MAX_EVENT_RATE_EPS)

    def event_time_ms(self, position: int) -> int:
        """Event time of one position (integer arithmetic: the same on every machine)."""
        return self.start_ms + position * 1000 // self.event_rate_eps

    def latest(self, wall_ms: int) -> int:
        """Number of positions whose event time has come at `wall_ms` (0 before the start)."""
        return max(0, (wall_ms - self.start_ms) * self.event_rate_eps // 1000)
