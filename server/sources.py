"""Where a stream's lines come from: the shared live site, a private seeded stream, or the user catalog.

Each source hands the stream loop (stream.py) whole NDJSON lines, a batch at a time, already stamped;
a seeded stream can instead hand it Arrow IPC messages (`ArrowSeededInteractions`), whole record batches.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import numpy as np
import ujson

from ..workers.arrow import interaction_arrow_schema, render_arrow
from ..workers.catalog import Catalog
from ..workers.generator import EventGenerator
from ..workers.model import ModelConfig
from ..workers.places import City
from .feed import SiteFeed

# Rows per write: a write is buffered whole by the transport when the client is slow, so this bounds
# what each connection can hold in memory (1,024 rows, about 600 KB; a 50,000/s stream writes ~1,000 per tick).
MAX_BATCH_ROWS = 1024


class Source:
    """A batch of whole lines per call. `times_ms` are the event times the pacer assigns (or None)."""

    batch_rows = MAX_BATCH_ROWS  # the most rows one read returns

    async def read(self, count: int, times_ms: np.ndarray | None) -> tuple[bytes | bytearray, int]:
        raise NotImplementedError

    def finish(self) -> bytes:
        """Bytes that end a stream that ran its course (nothing for lines; Arrow's end-of-stream marker)."""
        return b""

    def close(self) -> None:
        """Release what the source holds (nothing by default)."""


class LiveInteractions(Source):
    """Rows from the workers' rings, stamped with the moment they leave."""

    def __init__(self, feed: SiteFeed) -> None:
        self.feed = feed

    async def read(self, count: int, times_ms: np.ndarray | None) -> tuple[bytes | bytearray, int]:
        return self.feed.take(count, times_ms)


class GeneratorPool:
    """Generators for seeded streams, built on demand in a thread (the loop never waits on numpy).

    One thread runs all seeded generation: a generator keeps its current epoch in a buffer it reuses, so
    two threads must never use the same one, and a single thread also bounds the CPU that replays take
    from live streams. Keeps the few most recently used generators (each holds about 40 MB).
    """

    KEEP = 2
    # Concurrent offset requests (a Spark micro-batch split over partitions) read neighbouring ranges that
    # span an epoch boundary or two; with one cached epoch they recomputed a whole epoch for every batch.
    CACHED_EPOCHS = 2  # about 13 MB each; memory of all processes stays under 300 MB with two seeds in use

    def __init__(self, live_model: ModelConfig, live_catalog: Catalog, cities: tuple[City, ...]) -> None:
        self.live_model = live_model
        self.live_catalog = live_catalog
        self.cities = cities
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="clickstream-seeded")
        self._generators: OrderedDict[tuple[int, int], EventGenerator] = OrderedDict()
        self._lock = threading.Lock()

    def _generator(self, seed: int, shard: int) -> EventGenerator:
        key = (seed, shard)
        with self._lock:
            generator = self._generators.pop(key, None)
            if generator is None:
                model = ModelConfig(seed, self.live_model.max_users, self.live_model.max_products)
                # The live site's own seed reuses its catalog: no rebuild, same users as /stream/users.
                catalog = self.live_catalog if model == self.live_model else None
                generator = EventGenerator(model, shard, cities=self.cities, catalog=catalog,
                                           cached_epochs=self.CACHED_EPOCHS)
            self._generators[key] = generator
            while len(self._generators) > self.KEEP:
                self._generators.popitem(last=False)
            return generator

    def render(self, seed: int, shard: int, first: int, count: int, start_ms: int, event_rate: float) -> bytes:
        return self._generator(seed, shard).render_stamped(first, count, start_ms, event_rate).tobytes()

    def render_arrow(self, seed: int, shard: int, first: int, count: int, start_ms: int, event_rate: float) -> bytes:
        """One record batch of the range as an encapsulated Arrow IPC message (no schema)."""
        batch = render_arrow(self._generator(seed, shard), first, count, start_ms, event_rate)
        message: bytes = batch.serialize().to_pybytes()
        return message

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


class SeededInteractions(Source):
    """Positions offset.. of the stream (seed, shard): byte-identical on every request."""

    # Larger batches amortise the hop to the generation thread; replays are read as fast as the client
    # reads, so a write of 4,096 rows (2.4 MB) is what one such connection holds at most.
    batch_rows = 4096

    def __init__(self, pool: GeneratorPool, seed: int, shard: int, offset: int, start_ms: int,
                 event_rate: float) -> None:
        self.pool, self.seed, self.shard = pool, seed, shard
        self.position, self.start_ms, self.event_rate = offset, start_ms, event_rate

    async def read(self, count: int, times_ms: np.ndarray | None) -> tuple[bytes, int]:
        loop = asyncio.get_running_loop()
        data = await loop.run_in_executor(
            self.pool.executor, self._render, self.seed, self.shard, self.position, count, self.start_ms,
            self.event_rate,
        )
        self.position += count
        return self._frame(data), count

    def _render(self, seed: int, shard: int, first: int, count: int, start_ms: int, event_rate: float) -> bytes:
        """Runs in the generation thread."""
        return self.pool.render(seed, shard, first, count, start_ms, event_rate)

    def _frame(self, data: bytes) -> bytes:
        return data


class ArrowSeededInteractions(SeededInteractions):
    """A seeded range as an Arrow IPC stream: the schema, one record batch per read, the end-of-stream marker.

    Each message is serialized on its own (`Schema.serialize`, `RecordBatch.serialize`) rather than through
    an IPC writer: a writer wants a file to write to, while the stream loop wants bytes per batch. The
    concatenation is exactly what `RecordBatchStreamWriter` writes, so `pyarrow.ipc.open_stream` reads it.
    """

    # The IPC end-of-stream marker: a continuation token and a zero-length message.
    END_OF_STREAM = b"\xff\xff\xff\xff\x00\x00\x00\x00"

    def __init__(self, pool: GeneratorPool, seed: int, shard: int, offset: int, start_ms: int,
                 event_rate: float) -> None:
        super().__init__(pool, seed, shard, offset, start_ms, event_rate)
        self._schema_sent = False

    def _schema(self) -> bytes:
        if self._schema_sent:
            return b""
        self._schema_sent = True
        message: bytes = interaction_arrow_schema().serialize().to_pybytes()
        return message

    def _render(self, seed: int, shard: int, first: int, count: int, start_ms: int, event_rate: float) -> bytes:
        return self.pool.render_arrow(seed, shard, first, count, start_ms, event_rate)

    def _frame(self, data: bytes) -> bytes:
        return self._schema() + data  # the schema message goes before the first batch

    def finish(self) -> bytes:
        # A stream of no rows still starts with its schema, so a reader gets an empty table, not an error.
        return self._schema() + self.END_OF_STREAM


class Users(Source):
    """The catalog's users in id order from `offset`, wrapping around."""

    def __init__(self, catalog: Catalog, offset: int) -> None:
        self.catalog = catalog
        self.next_user = offset
        self.as_of = datetime.now(UTC).date()

    async def read(self, count: int, times_ms: np.ndarray | None) -> tuple[bytes, int]:
        n = self.catalog.n_users
        users = [(self.next_user + i) % n for i in range(count)]
        self.next_user = (self.next_user + count) % n
        lines = [ujson.dumps(self.catalog.user_record(u, self.as_of), ensure_ascii=False,
                             escape_forward_slashes=False) for u in users]
        return ("\n".join(lines) + "\n").encode(), count
