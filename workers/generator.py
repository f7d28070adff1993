"""One shard's stream as bytes: catalog + behaviour + encoder, for any range of positions.

This is the whole generator as a library: the producer processes write its rows into rings, the server
renders seeded (replayable) streams with it, and `arrow.py` builds Arrow batches from it (for the server's
`format=arrow` and inside Spark executors).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .behaviour import Behaviour
from .catalog import Catalog
from .encode import Encoder, stamp_timestamps
from .model import ModelConfig
from .places import City, load_cities


class EventGenerator:
    """Fixed-width NDJSON rows for positions of the stream (config.seed, shard)."""

    def __init__(self, config: ModelConfig, shard: int = 0, cities: tuple[City, ...] | None = None,
                 catalog: Catalog | None = None, cached_epochs: int = 1) -> None:
        if not 0 <= shard < 2**16:
            raise ValueError(f"shard must be in 0..65535, got {shard}")
        self.config = config
        self.shard = shard
        self.catalog = catalog or Catalog.build(config, cities or load_cities(config.city_count))
        self.behaviour = Behaviour(self.catalog, shard, cached_epochs)
        self.encoder = Encoder(self.catalog, shard)
        self.row_bytes = self.encoder.row_bytes

    def new_buffer(self, rows: int) -> np.ndarray:
        """A reusable row buffer for `render(..., out=)`."""
        return self.encoder.new_buffer(rows)

    def render(self, first_seq: int, count: int, out: np.ndarray | None = None) -> np.ndarray:
        """Rows for positions first_seq .. first_seq + count - 1, timestamps not yet stamped.

        `out` must come from `new_buffer` (its literal bytes are already in place)."""
        return self.encoder.encode(self.behaviour.events(first_seq, count), out)

    def render_stamped(self, first_seq: int, count: int, start_ms: int, event_rate: float) -> np.ndarray:
        """Rows with the stream definition's event time: start_ms + seq * 1000 / event_rate."""
        rows = self.render(first_seq, count)
        stamp_timestamps(rows, stream_time_ms(start_ms, event_rate, first_seq, count))
        return rows


def stream_time_ms(start_ms: int, event_rate: float, first_seq: int, count: int) -> np.ndarray:
    """Event time of positions first_seq.. in a stream that emits `event_rate` events per second from start_ms."""
    seq = np.arange(first_seq, first_seq + count, dtype=np.float64)
    return start_ms + np.floor(seq * (1000.0 / event_rate)).astype(np.int64)


@lru_cache(maxsize=4)
def cached_generator(config: ModelConfig, shard: int) -> EventGenerator:
    """One generator per (config, shard) per process: building the catalog takes about a second."""
    return EventGenerator(config, shard)


def render_ndjson(*, seed: int, shard: int, first_seq: int, count: int, start_ms: int, event_rate: float,
                  max_users: int = 100_000, max_products: int = 50_000) -> bytes:
    """Events first_seq .. first_seq + count - 1 of a seeded stream as NDJSON bytes (for Spark executors).

    The generator is built once per process and cached: the catalog takes about a second to build.
    """
    generator = cached_generator(ModelConfig(seed, max_users, max_products), shard)
    return generator.render_stamped(first_seq, count, start_ms, event_rate).tobytes()
