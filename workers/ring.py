"""A single-producer, single-consumer ring of fixed-width rows in POSIX shared memory.

Layout of the segment (all integers little-endian uint64, each hot counter on its own 64-byte line so
the producer's and the consumer's writes never share a cache line):

    offset  field
    0       magic        b"CLKRING1"
    8       row_bytes    width of every row (0 until the producer formats the ring)
    16      capacity     rows the ring holds (0 until formatted)
    24      data_bytes   size of the data area
    64      head         rows ever written (producer only); ever-increasing
    128     tail         rows ever read (consumer only); ever-increasing
    192     heartbeat_ns producer's time.monotonic_ns() at its last pass (CLOCK_MONOTONIC is system-wide)
    200     produced_pid pid of the producer that last attached
    256     closed       1 once the owner asked the producer to stop
    320     rows         capacity * row_bytes bytes; row i of the stream lives at slot i % capacity

Counters only increase, so `head - tail` is the fill and full (== capacity) and empty (== 0) are never
confused. A read or write that crosses the end of the data area is two copies.

Memory ordering: there are no locks and no fences. A write copies rows into the data area first and
publishes them by storing `head` last; a read copies rows out first and frees them by storing `tail`
last. That is only correct if the other process sees those stores in program order: a consumer that
sees the new `head` must also see the row bytes stored before it, and a producer that sees the new
`tail` must find the consumer done with those slots. x86-64 guarantees it (total store order: stores
are not reordered with older stores or loads, and an aligned 8-byte store is atomic); numpy and Python
emit no fences of their own. Weakly ordered CPUs (ARM64, POWER, RISC-V) may make the `head` store
visible before the rows, so a consumer could send a row that is not fully written. `Ring.create` logs a
warning on any machine that is not x86-64 (see `store_order_caveat`).

The owner creates the segment with a size in bytes; the producer, which is the one that knows how wide
its rows are, formats it (row width and capacity) before its first write, and a restarted producer keeps
an already formatted ring as it is. The creator owns the segment and is the only one to `unlink()` it.
Segment names carry a prefix and the creator's pid (`clickstream-<pid>-<n>`) so a supervisor can sweep
segments left by a dead predecessor.
"""

from __future__ import annotations

import functools
import logging
import os
import platform
import time
from multiprocessing import shared_memory
from pathlib import Path

import numpy as np

MAGIC = np.frombuffer(b"CLKRING1", dtype=np.uint64)[0]
HEADER_BYTES = 320
_ROW_BYTES, _CAPACITY, _DATA_BYTES = 1, 2, 3
_HEAD, _TAIL, _HEARTBEAT, _PID, _CLOSED = 8, 16, 24, 25, 32  # uint64 word indexes of the fields above
SEGMENT_PREFIX = "clickstream-"
SHM_DIR = Path("/dev/shm")
# platform.machine() of the CPUs whose store order the ring relies on (Linux/macOS say x86_64, Windows AMD64).
X86_64_MACHINES = frozenset({"x86_64", "amd64"})

log = logging.getLogger("clickstream.ring")


def store_order_caveat(machine: str) -> str | None:
    """Why the ring's lock-free publication may be unsafe on `machine` (a platform.machine()), or None.

    A warning, not a refusal: a reordered store stays invisible for nanoseconds (until the store buffer
    drains), while between a copy and its counter store lie microseconds of interpreter and numpy work, so
    a torn row is unlikely though not excluded; refusing would shut every ARM64 laptop and server (Apple
    silicon, Graviton) out of the project for a hazard we have not measured. The warning says what to do.
    """
    if machine.lower() in X86_64_MACHINES:
        return None
    return (
        f"the shared-memory ring relies on x86-64 store ordering and this CPU is {machine or 'unknown'!r}: "
        "a stream may, rarely, carry a row that is not fully written; use an x86-64 machine where every "
        "row must be whole"
    )


class RingClosed(Exception):
    """The ring's owner closed it: the producer should stop."""


class Ring:
    """One shared-memory ring; create() in the owner, attach() in the other process."""

    def __init__(self, shm: shared_memory.SharedMemory, owner: bool) -> None:
        self._shm = shm
        self.owner = owner
        self.name = shm.name
        self._words = np.ndarray((HEADER_BYTES // 8,), dtype=np.uint64, buffer=shm.buf)
        if self._words[0] != MAGIC:
            raise ValueError(f"shared memory segment {shm.name!r} is not a clickstream ring")
        self._rows: np.ndarray | None = None

    @classmethod
    def create(cls, data_bytes: int, name: str | None = None) -> Ring:
        """A new, empty, unformatted ring owned by this process."""
        if data_bytes <= 0:
            raise ValueError("data_bytes must be positive")
        _warn_about_store_order(platform.machine())
        shm = shared_memory.SharedMemory(name=name, create=True, size=HEADER_BYTES + data_bytes)
        words = np.ndarray((HEADER_BYTES // 8,), dtype=np.uint64, buffer=shm.buf)
        words[:] = 0
        words[_DATA_BYTES] = data_bytes
        words[0] = MAGIC  # last: a half-initialised segment is never taken for a ring
        del words
        return cls(shm, owner=True)

    @classmethod
    def attach(cls, name: str) -> Ring:
        """Attach to an existing ring.

        Our producers are started by multiprocessing and share the owner's resource tracker, so the
        registration this makes is the owner's own and nothing is unlinked behind the owner's back.
        """
        return cls(shared_memory.SharedMemory(name=name), owner=False)

    def format(self, row_bytes: int) -> None:
        """Producer: fix the row width (once; a restarted producer must find the same width)."""
        if row_bytes <= 0 or row_bytes > int(self._words[_DATA_BYTES]):
            raise ValueError(f"row_bytes {row_bytes} does not fit in this ring")
        current = int(self._words[_ROW_BYTES])
        if current == 0:
            self._words[_CAPACITY] = int(self._words[_DATA_BYTES]) // row_bytes
            self._words[_ROW_BYTES] = row_bytes
        elif current != row_bytes:
            raise ValueError(f"ring {self.name} holds {current}-byte rows, not {row_bytes}")

    @property
    def formatted(self) -> bool:
        return bool(self._words[_ROW_BYTES])

    @property
    def row_bytes(self) -> int:
        return int(self._words[_ROW_BYTES])

    @property
    def capacity(self) -> int:
        return int(self._words[_CAPACITY])

    def _data(self) -> np.ndarray:
        if self._rows is None:
            if not self.formatted:
                raise RuntimeError(f"ring {self.name} is not formatted yet")
            self._rows = np.ndarray(
                (self.capacity, self.row_bytes), dtype=np.uint8, buffer=self._shm.buf, offset=HEADER_BYTES
            )
        return self._rows

    # ---- state ----

    @property
    def head(self) -> int:
        return int(self._words[_HEAD])

    @property
    def tail(self) -> int:
        return int(self._words[_TAIL])

    def fill(self) -> int:
        """Rows written and not yet read."""
        return int(self._words[_HEAD]) - int(self._words[_TAIL])

    @property
    def closed(self) -> bool:
        return bool(self._words[_CLOSED])

    def close_for_writing(self) -> None:
        """Ask the producer to stop (it sees `closed` at its next pass)."""
        self._words[_CLOSED] = 1

    def beat(self) -> None:
        """Producer: record that it is alive."""
        self._words[_HEARTBEAT] = time.monotonic_ns()

    def set_producer_pid(self, pid: int) -> None:
        self._words[_PID] = pid

    @property
    def producer_pid(self) -> int:
        return int(self._words[_PID])

    def heartbeat_age_s(self) -> float:
        """Seconds since the producer's last beat (inf if it never beat)."""
        beat = int(self._words[_HEARTBEAT])
        return float("inf") if beat == 0 else (time.monotonic_ns() - beat) / 1e9

    # ---- data ----

    def write(self, rows: np.ndarray) -> int:
        """Producer: append as many of `rows` as fit; returns how many were written."""
        data = self._data()
        if rows.ndim != 2 or rows.shape[1] != data.shape[1]:
            raise ValueError(f"rows must have shape (n, {data.shape[1]})")
        written = 0
        while written < len(rows):  # twice at most: up to the end of the slots, then from slot 0
            space = self.writable(len(rows) - written)
            if len(space) == 0:
                break
            space[:] = rows[written : written + len(space)]
            self.publish(len(space))
            written += len(space)
        return written

    def writable(self, max_rows: int) -> np.ndarray:
        """Producer: a view of up to `max_rows` free slots at the head, contiguous (so it stops at the end of
        the slots). The producer renders rows straight into it, then `publish()`es them: a copy of every row
        from a private buffer into the ring cost ~7 % of a worker's time."""
        if self._words[_CLOSED]:
            raise RingClosed(self.name)
        data = self._data()
        head = int(self._words[_HEAD])
        free = len(data) - (head - int(self._words[_TAIL]))
        slot = head % len(data)
        return data[slot : slot + max(0, min(max_rows, free, len(data) - slot))]

    def publish(self, count: int) -> None:
        """Producer: make the first `count` rows of the last `writable()` view readable."""
        head = int(self._words[_HEAD])
        if not 0 <= count <= len(self._data()) - (head - int(self._words[_TAIL])):
            raise ValueError(f"cannot publish {count} rows")
        self._words[_HEAD] = head + count  # after the rows are written: the consumer reads up to head

    def peek(self, max_rows: int) -> list[np.ndarray]:
        """Consumer: up to `max_rows` unread rows as views into the ring (two when they wrap), in order.

        Nothing is freed: the rows stay the consumer's, and the views valid, until `consume()`, because the
        producer never writes a slot between tail and head. So the consumer copies the rows out once, straight
        from the views (the server stamps timestamps in that copy, in server/feed.py), then consumes them.
        """
        tail = int(self._words[_TAIL])
        count = min(max_rows, int(self._words[_HEAD]) - tail)
        if count <= 0:
            return []
        data = self._data()
        slot = tail % len(data)
        first = min(count, len(data) - slot)
        views = [data[slot : slot + first]]
        if count > first:
            views.append(data[: count - first])
        return views

    def consume(self, count: int) -> None:
        """Consumer: free the first `count` unread rows (after the last use of their views)."""
        tail = int(self._words[_TAIL])
        if not 0 <= count <= int(self._words[_HEAD]) - tail:
            raise ValueError(f"cannot consume {count} rows")
        self._words[_TAIL] = tail + count

    # ---- lifetime ----

    def close(self) -> None:
        """Drop this process's mapping (numpy views first, or the buffer cannot be released)."""
        self._words = np.zeros(HEADER_BYTES // 8, dtype=np.uint64)
        self._rows = None
        self._shm.close()

    def unlink(self) -> None:
        """Owner only: remove the segment's name (memory is freed once every process has closed it)."""
        if not self.owner:
            raise PermissionError("only the ring's creator may unlink it")
        self._shm.unlink()


@functools.cache
def _warn_about_store_order(machine: str) -> None:
    """Log the caveat once per process and machine name (the owner creates one ring per worker)."""
    caveat = store_order_caveat(machine)
    if caveat is not None:
        log.warning("%s", caveat)


def segment_name(owner_pid: int, index: int) -> str:
    return f"{SEGMENT_PREFIX}{owner_pid}-{index}"


def sweep_stale_segments() -> list[str]:
    """Unlink ring segments whose owner process no longer exists (left by a SIGKILLed server)."""
    removed: list[str] = []
    if not SHM_DIR.is_dir():
        return removed
    for path in SHM_DIR.glob(f"{SEGMENT_PREFIX}*"):
        try:
            owner = int(path.name[len(SEGMENT_PREFIX) :].split("-")[0])
        except ValueError:
            continue
        if not _pid_alive(owner):
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
