"""Where a stream's lines come from: the shared live site, a private seeded stream, or the user catalog.

Each source hands the paced loop (stream.py) whole NDJSON lines, a batch at a time, with their timestamps;
a seeded stream can instead hand it Arrow IPC messages (`ArrowSeededInteractions`), whole record batches.
"""

from __future__ import annotations

import time

import numpy as np

from ..limits import MAX_TIMESTAMP_MS, MS_PER_YEAR, SEEDED_HORIZON_MS
from ..workers.arrow import interaction_arrow_schema
from ..workers.encode import read_timestamp_ms, stamp_timestamps
from .metrics import EventClock
from .params import WALL_CLOCK, StreamRequest, past_horizon, store_ended
from .rings import SiteRings
from .seeded import Lease, SeededPool
from .users import UserLines

# Rows per write: a write is buffered whole by the transport when the client is slow, so this bounds
# what each connection can hold in memory (256 rows, about 165 KB). A 50,000/s stream writes ~1,000 rows a
# tick, in four writes: with 32 such clients, 1,024-row writes peaked ~20 MiB higher in PSS, and the CPU
# per event did not measurably differ (bench/http_bench.py, alternated runs).
MAX_BATCH_ROWS = 256


class Source:
    """Up to `count` events as whole lines per call (fewer when none are ready), and how many there are."""

    batch_rows = MAX_BATCH_ROWS  # the most rows one read returns

    async def read(self, count: int) -> tuple[bytes | bytearray, int]:
        raise NotImplementedError

    def finish(self) -> bytes:
        """Bytes that end a stream (nothing for lines; Arrow's end-of-stream marker)."""
        return b""

    # Event-time seconds per wall second (the `Clickstream-Speed` header): "auto" where the store's activity
    # and the delivery rate decide it, "unpaced" for a stream read as fast as the client reads.
    speed: str | None = None

    async def open(self) -> None:
        """Checks that need the stream's generator, before the headers go (a failure is still a 4xx)."""

    def close(self) -> None:
        """Release what the stream held (a seeded stream's place under the caps)."""


class LiveInteractions(Source):
    """Rows from the workers' rings, in the store's event time (`clock=store`) or stamped as they leave.

    With `clock=wall`, a batch holds the events that fell due since the last one, at `rate_eps`: they are
    stamped as spread over the time just past, ending now, never before the previous batch's last one.
    """

    def __init__(self, rings: SiteRings, rate_eps: int, clock: str, event_clock: EventClock) -> None:
        self.rings = rings
        self.wall = clock == WALL_CLOCK
        self.speed = "1" if self.wall else "auto"
        self.event_clock = event_clock
        self.step_ms = 1000.0 / rate_eps
        self.last_ms = 0

    async def read(self, count: int) -> tuple[bytes | bytearray, int]:
        data, got = self.rings.take(count)
        if got:
            rows = np.frombuffer(data, dtype=np.uint8).reshape(got, -1)
            if self.wall:
                self._stamp(rows)
            else:
                self.event_clock.observe(time.monotonic(), read_timestamp_ms(rows[-1]))
        return data, got

    def _stamp(self, rows: np.ndarray) -> None:
        got = len(rows)
        now_ms = time.time() * 1000
        times = np.floor(now_ms - self.step_ms * np.arange(got - 1, -1, -1)).astype(np.int64)
        np.maximum(times, self.last_ms, out=times)
        self.last_ms = int(times[-1])
        stamp_timestamps(rows, times)


class SeededInteractions(Source):
    """Positions offset.. of a seeded stream: byte-identical on every request."""

    # Larger batches amortise the hop to the generation thread; replays are read as fast as the client
    # reads, so a write of 4,096 rows (2.4 MB) is what one such connection holds at most.
    batch_rows = 4096

    def __init__(self, pool: SeededPool, lease: Lease, request: StreamRequest) -> None:
        self.pool, self.lease = pool, lease  # the lease: this stream's place under the pool's caps
        self.request, self.position = request, request.offset
        self.speed = "auto" if request.rate_eps else "unpaced"

    async def open(self) -> None:
        assert self.request.definition is not None
        start_ms = self.request.definition.start_ms
        store_end_ms = await self.pool.end_ms(self.lease)
        if start_ms >= store_end_ms:
            raise store_ended(start_ms, store_end_ms)
        horizon_ms = min(start_ms + SEEDED_HORIZON_MS, MAX_TIMESTAMP_MS + 1, store_end_ms)
        end = self.request.end_position
        # A year of the store is cheap to count (~0.1 s once per generator); the whole horizon, ~0.6 s.
        if end > await self.pool.position_at(self.lease, min(start_ms + MS_PER_YEAR, horizon_ms)):
            positions = await self.pool.position_at(self.lease, horizon_ms)
            if end > positions:
                raise past_horizon(self.request, positions)

    async def read(self, count: int) -> tuple[bytes, int]:
        data = await self._render(self.position, count)
        self.position += count
        return self._frame(data), count

    async def _render(self, first: int, count: int) -> bytes:
        """Rendered on the pool's thread, in turn with every other seeded stream."""
        return await self.pool.render_ndjson(self.lease, first, count)

    def close(self) -> None:
        self.lease.release()

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

    def __init__(self, pool: SeededPool, lease: Lease, request: StreamRequest) -> None:
        super().__init__(pool, lease, request)
        self._schema_sent = False

    def _schema(self) -> bytes:
        if self._schema_sent:
            return b""
        self._schema_sent = True
        message: bytes = interaction_arrow_schema().serialize().to_pybytes()
        return message

    async def _render(self, first: int, count: int) -> bytes:
        return await self.pool.render_arrow(self.lease, first, count)

    def _frame(self, data: bytes) -> bytes:
        return self._schema() + data  # the schema message goes before the first batch

    def finish(self) -> bytes:
        # A stream of no rows still starts with its schema, so a reader gets an empty table, not an error.
        return self._schema() + self.END_OF_STREAM


class Users(Source):
    """The catalog's users in id order from `offset`, wrapping around (rendered off the loop: users.py)."""

    def __init__(self, lines: UserLines, offset: int, truth: bool) -> None:
        self.user_lines = lines
        self.next_user = offset
        self.truth = truth

    async def read(self, count: int) -> tuple[bytes, int]:
        data = await self.user_lines.lines(self.next_user, count, self.truth)
        self.next_user = (self.next_user + count) % self.user_lines.catalog.n_users
        return data, count
