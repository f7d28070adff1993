"""What identifies a seeded stream: one definition shared by the server, the Spark source and the report.

Two processes (the server, a Spark executor, the report) holding equal definitions and equal
`ModelConfig`s produce byte-identical events for the same positions.
"""

from __future__ import annotations

from dataclasses import dataclass

from .limits import DEFAULT_FUNNEL, DEFAULT_SEED, DEFAULT_START_MS, FUNNELS, MAX_SEED, MAX_SHARD, MAX_TIMESTAMP_MS


def check_range(name: str, value: int, low: int, high: int) -> int:
    """`value`, or a ValueError naming `name` and its range."""
    if not low <= value <= high:
        raise ValueError(f"{name} must be in {low}..{high}, got {value}")
    return value


@dataclass(frozen=True)
class StreamDefinition:
    """A seeded stream: the store's activity from `start_ms` on, one realisation per (seed, shard).

    The store decides every event's time (workers/behaviour.py): position order is event-time order, and
    how fast positions are delivered (a request's `rate`, Spark's `rowsPerSecond`) is a separate thing.
    """

    seed: int = DEFAULT_SEED
    shard: int = 0
    start_ms: int = DEFAULT_START_MS
    funnel: str = DEFAULT_FUNNEL  # which calibration sessions follow (workers/funnel.py)

    def __post_init__(self) -> None:
        if self.funnel not in FUNNELS:
            raise ValueError(f"funnel must be one of {', '.join(FUNNELS)}, got {self.funnel!r}")
        check_range("seed", self.seed, 0, MAX_SEED)
        check_range("shard", self.shard, 0, MAX_SHARD)
        check_range("start_ms", self.start_ms, 0, MAX_TIMESTAMP_MS)
