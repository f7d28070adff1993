"""The shared-memory ring: real segments, a real second process."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest

from clickstream.workers.ring import Ring, RingClosed, segment_name, sweep_stale_segments


def rows(start: int, count: int, width: int = 8) -> np.ndarray:
    """Rows whose bytes encode their index, so order and content can be checked."""
    values = np.arange(start, start + count, dtype=np.uint64)
    return np.repeat(values.view(np.uint8).reshape(-1, 8), width // 8, axis=1)


@pytest.fixture
def ring() -> Ring:
    ring = Ring.create(10 * 8, name=segment_name(os.getpid(), 900))
    ring.format(8)
    yield ring
    ring.close()
    ring.unlink()


def test_capacity_follows_the_row_width(ring: Ring) -> None:
    assert (ring.row_bytes, ring.capacity, ring.fill()) == (8, 10, 0)


def test_full_ring_accepts_only_what_fits_and_empty_reads_nothing(ring: Ring) -> None:
    assert ring.write(rows(0, 7)) == 7
    assert ring.write(rows(7, 7)) == 3  # full at 10: head - tail == capacity, never confused with empty
    assert ring.fill() == 10
    assert ring.write(rows(10, 1)) == 0
    out = np.zeros((20, 8), dtype=np.uint8)
    assert ring.read_into(out) == 10
    assert (out[:10] == rows(0, 10)).all()
    assert ring.read_into(out) == 0


def test_wraps_around_in_order(ring: Ring) -> None:
    out = np.zeros((10, 8), dtype=np.uint8)
    written = read = 0
    for step in range(25):  # many laps with reads and writes that straddle the end
        written += ring.write(rows(written, 3 + step % 5))
        count = ring.read_into(out, 2 + step % 7)
        assert (out[:count] == rows(read, count)).all()
        read += count
    assert ring.head == written and ring.tail == read


def test_closed_ring_refuses_writes(ring: Ring) -> None:
    ring.close_for_writing()
    with pytest.raises(RingClosed):
        ring.write(rows(0, 1))


def test_format_is_fixed_once(ring: Ring) -> None:
    ring.format(8)  # a restarted producer with the same width keeps the ring
    with pytest.raises(ValueError):
        ring.format(16)


def _produce(name: str, total: int) -> None:
    ring = Ring.attach(name)
    sent = 0
    while sent < total:
        sent += ring.write(rows(sent, min(64, total - sent)))
    ring.close()


def test_another_process_writes_what_this_one_reads() -> None:
    ring = Ring.create(1000 * 8, name=segment_name(os.getpid(), 901))
    ring.format(8)
    try:
        total = 200_000
        producer = multiprocessing.get_context("spawn").Process(target=_produce, args=(ring.name, total))
        producer.start()
        out = np.zeros((500, 8), dtype=np.uint8)
        read = 0
        while read < total:
            count = ring.read_into(out)
            assert (out[:count] == rows(read, count)).all()
            read += count
        producer.join(30)
        assert producer.exitcode == 0
    finally:
        ring.close()
        ring.unlink()
    assert not Path("/dev/shm", ring.name).exists()


def test_only_the_owner_unlinks(ring: Ring) -> None:
    other = Ring.attach(ring.name)
    with pytest.raises(PermissionError):
        other.unlink()
    other.close()


def test_sweep_removes_segments_of_dead_owners() -> None:
    dead_pid = 2**22 + 12345  # above the default pid_max: no such process
    stale = Ring.create(64, name=segment_name(dead_pid, 0))
    stale.close()
    mine = Ring.create(64, name=segment_name(os.getpid(), 902))
    try:
        removed = sweep_stale_segments()
        assert stale.name in removed and mine.name not in removed
        assert Path("/dev/shm", mine.name).exists()
    finally:
        mine.close()
        mine.unlink()
    # the stale one was unlinked behind the tracker's back: tell it, so it does not warn at exit
    from multiprocessing import resource_tracker

    resource_tracker.unregister("/" + stale.name, "shared_memory")
