"""Where a stream's lines come from: the shared live site, a private seeded stream, or the user catalog.

Each source hands the paced loop (stream.py) whole NDJSON lines, a batch at a time, with their timestamps;
a seeded stream can instead hand it Arrow IPC messages (`ArrowSeededInteractions`), whole record batches.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import numpy as np
import ujson

from ..definition import StreamDefinition
from ..workers.arrow import interaction_arrow_schema, render_arrow
from ..workers.catalog import Catalog
from ..workers.encode import stamp_timestamps
from ..workers.generator import EventGenerator
from ..workers.model import ModelConfig
from ..workers.places import City
from .rings import SiteRings

# Rows per write: a write is buffered whole by the transport when the client is slow, so this bounds
# what each connection can hold in memory (1,024 rows, about 600 KB; a 50,000/s stream writes ~1,000 per tick).
MAX_BATCH_ROWS = 1024


class Source:
    """Up to `count` events as whole lines per call (fewer when none are ready), and how many there are."""

    batch_rows = MAX_BATCH_ROWS  # the most rows one read returns

    async def read(self, count: int) -> tuple[bytes | bytearray, int]:
        raise NotImplementedError

    def finish(self) -> bytes:
        """Bytes that end a stream (nothing for lines; Arrow's end-of-stream marker)."""
        return b""


class LiveInteractions(Source):
    """Rows from the workers' rings, stamped with the moment they leave.

    A batch holds the events that fell due since the last one, at `rate_eps`: they are stamped as spread
    over the time just past, ending now, and never before the previous batch's last timestamp.
    """

    def __init__(self, rings: SiteRings, rate_eps: int) -> None:
        self.rings = rings
        self.step_ms = 1000.0 / rate_eps
        self.last_ms = 0

    async def read(self, count: int) -> tuple[bytes | bytearray, int]:
        data, got = self.rings.take(count)
        if got:
            now_ms = time.time() * 1000
            times = np.floor(now_ms - self.step_ms * np.arange(got - 1, -1, -1)).astype(np.int64)
            np.maximum(times, self.last_ms, out=times)
            self.last_ms = int(times[-1])
            rows = np.frombuffer(data, dtype=np.uint8).reshape(got, -1)
            stamp_timestamps(rows, times)
        return data, got


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

    def render(self, stream: StreamDefinition, first: int, count: int) -> bytes:
        generator = self._generator(stream.seed, stream.shard)
        return generator.render_stamped(first, count, stream.start_ms, stream.event_rate_eps).tobytes()

    def render_arrow(self, stream: StreamDefinition, first: int, count: int) -> bytes:
        """One record batch of the range as an encapsulated Arrow IPC message (no schema)."""
        generator = self._generator(stream.seed, stream.shard)
        batch = render_arrow(generator, first, count, stream.start_ms, stream.event_rate_eps)
        message: bytes = batch.serialize().to_pybytes()
        return message

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


class SeededInteractions(Source):
    """Positions offset.. of a seeded stream: byte-identical on every request."""

    # Larger batches amortise the hop to the generation thread; replays are read as fast as the client
    # reads, so a write of 4,096 rows (2.4 MB) is what one such connection holds at most.
    batch_rows = 4096

    def __init__(self, pool: GeneratorPool, stream: StreamDefinition, offset: int) -> None:
        self.pool, self.stream, self.position = pool, stream, offset

    async def read(self, count: int) -> tuple[bytes, int]:
        loop = asyncio.get_running_loop()
        data = await loop.run_in_executor(self.pool.executor, self._render, self.position, count)
        self.position += count
        return self._frame(data), count

    def _render(self, first: int, count: int) -> bytes:
        """Runs in the generation thread."""
        return self.pool.render(self.stream, first, count)

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

    def __init__(self, pool: GeneratorPool, stream: StreamDefinition, offset: int) -> None:
        super().__init__(pool, stream, offset)
        self._schema_sent = False

    def _schema(self) -> bytes:
        if self._schema_sent:
            return b""
        self._schema_sent = True
        message: bytes = interaction_arrow_schema().serialize().to_pybytes()
        return message

    def _render(self, first: int, count: int) -> bytes:
        return self.pool.render_arrow(self.stream, first, count)

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

    async def read(self, count: int) -> tuple[bytes, int]:
        n = self.catalog.n_users
        users = [(self.next_user + i) % n for i in range(count)]
        self.next_user = (self.next_user + count) % n
        lines = [ujson.dumps(self.catalog.user_record(u, self.as_of), ensure_ascii=False,
                             escape_forward_slashes=False) for u in users]
        return ("\n".join(lines) + "\n").encode(), count
