"""One stream as bytes: catalog + behaviour + encoder, for any range of positions.

This is the whole generator as a library: the producer processes write its rows into rings, the server
renders seeded (replayable) streams with it, and `arrow.py` builds Arrow batches from it (for the server's
`format=arrow` and inside Spark executors). A stream is (config, shard, start_ms), and for the live site
a partition of the store's users per worker; rows carry their event time, decided by the model.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..limits import DEFAULT_FUNNEL, DEFAULT_START_MS, MAX_TIMESTAMP_MS
from .behaviour import Behaviour
from .catalog import Catalog
from .encode import Encoder
from .model import ModelConfig
from .places import City, load_cities


class EventGenerator:
    """Fixed-width NDJSON rows, timestamps included, for positions of the stream (config, shard, start_ms)."""

    def __init__(self, config: ModelConfig, shard: int = 0, start_ms: int = DEFAULT_START_MS, partition: int = 0,
                 partitions: int = 1, cities: tuple[City, ...] | None = None, catalog: Catalog | None = None,
                 cached_epochs: int = 1) -> None:
        if not 0 <= shard < 2**16:
            raise ValueError(f"shard must be in 0..65535, got {shard}")
        self.config = config
        self.shard = shard
        self.start_ms = int(start_ms)
        self.catalog = catalog or Catalog.build(config, cities or load_cities(config))
        self.behaviour = Behaviour(self.catalog, shard, self.start_ms, partition, partitions, cached_epochs)
        self.encoder = Encoder(self.catalog, shard)
        self.row_bytes = self.encoder.row_bytes

    def new_buffer(self, rows: int) -> np.ndarray:
        """A reusable row buffer for `render(..., out=)`."""
        return self.encoder.new_buffer(rows)

    def render(self, first: int, count: int, out: np.ndarray | None = None) -> np.ndarray:
        """Rows for positions first .. first + count - 1, event-time timestamps stamped.

        `out`: any (count, row_bytes) uint8 array (a `new_buffer`, or free slots of a ring); every byte of its
        rows is written."""
        return self.encoder.encode(self.behaviour.events(first, count), out)

    def position_at(self, time_ms: int) -> int:
        """How many positions have event time < time_ms (0 at or before the start). No scan: closed-form
        sums plus the one or two epochs around time_ms."""
        return self.behaviour.position_at(int(time_ms))

    @property
    def end_ms(self) -> int:
        """Event time up to which the store is defined: when its user ids run out (users.py), or the end of the
        year 9999, whichever comes first."""
        return min(self.catalog.users.ids_exhausted_ms, MAX_TIMESTAMP_MS + 1)

    def events_per_second(self, time_ms: int) -> float:
        """Expected events per second of event time in this stream at time_ms (the store's A(t) / partitions)."""
        return float(self.behaviour.events_per_second(int(time_ms)))


@lru_cache(maxsize=4)
def cached_generator(config: ModelConfig, shard: int, start_ms: int = DEFAULT_START_MS) -> EventGenerator:
    """One generator per (config, shard, start_ms) per process: building the catalog takes about a second."""
    return EventGenerator(config, shard, start_ms)


def seeded_generator(*, seed: int, shard: int, start_ms: int = DEFAULT_START_MS, max_users: int = 100_000,
                     max_products: int = 50_000, funnel: str = DEFAULT_FUNNEL,
                     store_countries: tuple[str, ...] = ()) -> EventGenerator:
    """The per-process cached generator of a seeded stream, from a Spark executor's store options."""
    config = ModelConfig(seed, max_users, max_products, funnel=funnel, store_countries=store_countries)
    return cached_generator(config, shard, start_ms)


def render_ndjson(*, seed: int, shard: int, first_seq: int, count: int, start_ms: int = DEFAULT_START_MS,
                  max_users: int = 100_000, max_products: int = 50_000, funnel: str = DEFAULT_FUNNEL,
                  store_countries: tuple[str, ...] = ()) -> bytes:
    """Events first_seq .. first_seq + count - 1 of a seeded stream as NDJSON bytes (for Spark executors)."""
    generator = seeded_generator(seed=seed, shard=shard, start_ms=start_ms, max_users=max_users,
                                 max_products=max_products, funnel=funnel, store_countries=store_countries)
    return generator.render(first_seq, count).tobytes()
