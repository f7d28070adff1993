"""Where a stream's lines come from: the shared live site, a private seeded stream, or the user catalog.

Each source hands the stream loop (stream.py) whole NDJSON lines, a batch at a time, already stamped;
a seeded stream can instead hand it Arrow IPC messages (`ArrowSeededInteractions`), whole record batches.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from ..workers.arrow import interaction_arrow_schema
from .feed import SiteFeed
from .seeded import Lease, SeededPool
from .users import UserLines

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


class SeededInteractions(Source):
    """Positions offset.. of the stream (seed, shard): byte-identical on every request."""

    # Larger batches amortise the hop to the generation thread; replays are read as fast as the client
    # reads, so a write of 4,096 rows (2.4 MB) is what one such connection holds at most.
    batch_rows = 4096

    def __init__(self, pool: SeededPool, lease: Lease, offset: int, start_ms: int, event_rate: float) -> None:
        self.pool, self.lease = pool, lease  # the lease: this stream's (seed, shard) and its place under the caps
        self.position, self.start_ms, self.event_rate = offset, start_ms, event_rate

    async def read(self, count: int, times_ms: np.ndarray | None) -> tuple[bytes, int]:
        data = await self._render(self.position, count)
        self.position += count
        return self._frame(data), count

    async def _render(self, first: int, count: int) -> bytes:
        """Rendered on the pool's thread, in turn with every other seeded stream."""
        return await self.pool.render_ndjson(self.lease, first, count, self.start_ms, self.event_rate)

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

    def __init__(self, pool: SeededPool, lease: Lease, offset: int, start_ms: int, event_rate: float) -> None:
        super().__init__(pool, lease, offset, start_ms, event_rate)
        self._schema_sent = False

    def _schema(self) -> bytes:
        if self._schema_sent:
            return b""
        self._schema_sent = True
        return interaction_arrow_schema().serialize().to_pybytes()

    async def _render(self, first: int, count: int) -> bytes:
        return await self.pool.render_arrow(self.lease, first, count, self.start_ms, self.event_rate)

    def _frame(self, data: bytes) -> bytes:
        return self._schema() + data  # the schema message goes before the first batch

    def finish(self) -> bytes:
        # A stream of no rows still starts with its schema, so a reader gets an empty table, not an error.
        return self._schema() + self.END_OF_STREAM


class Users(Source):
    """The catalog's users in id order from `offset`, wrapping around (rendered off the loop: users.py)."""

    def __init__(self, lines: UserLines, offset: int) -> None:
        self.user_lines = lines
        self.next_user = offset
        self.as_of = datetime.now(UTC).date()

    async def read(self, count: int, times_ms: np.ndarray | None) -> tuple[bytes, int]:
        data = await self.user_lines.lines(self.next_user, count, self.as_of)
        self.next_user = (self.next_user + count) % self.user_lines.catalog.n_users
        return data, count
