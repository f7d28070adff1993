"""The shared-memory ring: real segments, a real second process."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from clickstream.workers.ring import Ring, RingClosed, segment_name, store_order_caveat, sweep_stale_segments


def rows(start: int, count: int, width: int = 8) -> np.ndarray:
    """Rows whose bytes encode their index, so order and content can be checked."""
    values = np.arange(start, start + count, dtype=np.uint64)
    return np.repeat(values.view(np.uint8).reshape(-1, 8), width // 8, axis=1)


def take(ring: Ring, max_rows: int) -> np.ndarray:
    """Read as the server does (server/feed.py): peek at the views, copy them out once, then consume."""
    views = ring.peek(max_rows)
    out = np.concatenate(views) if views else np.empty((0, ring.row_bytes), dtype=np.uint8)
    ring.consume(len(out))
    return out


@pytest.fixture
def ring() -> Iterator[Ring]:
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
    assert (take(ring, 20) == rows(0, 10)).all()
    assert ring.peek(20) == []
    assert ring.write(rows(10, 10)) == 10  # consumed slots are free again


def test_peek_frees_nothing_until_consume(ring: Ring) -> None:
    ring.write(rows(0, 6))
    first = np.concatenate(ring.peek(4))
    assert (np.concatenate(ring.peek(4)) == first).all() and ring.fill() == 6
    assert ring.write(rows(6, 10)) == 4  # the peeked rows still hold their slots
    ring.consume(4)
    assert ring.tail == 4 and ring.fill() == 6
    assert (take(ring, 100) == rows(4, 6)).all()


def test_consume_refuses_more_than_is_unread(ring: Ring) -> None:
    ring.write(rows(0, 3))
    for count in (4, -1):
        with pytest.raises(ValueError):
            ring.consume(count)
    assert ring.tail == 0


def test_a_read_across_the_end_is_two_views_in_order(ring: Ring) -> None:
    ring.write(rows(0, 8))
    ring.consume(8)
    ring.write(rows(8, 5))  # slots 8, 9, then 0, 1, 2
    views = ring.peek(10)
    assert [len(v) for v in views] == [2, 3]
    assert (np.concatenate(views) == rows(8, 5)).all()


def test_wraps_around_in_order(ring: Ring) -> None:
    written = read = 0
    for step in range(25):  # many laps with reads and writes that straddle the end
        written += ring.write(rows(written, 3 + step % 5))
        out = take(ring, 2 + step % 7)
        assert (out == rows(read, len(out))).all()
        read += len(out)
    assert ring.head == written and ring.tail == read


def test_closed_ring_refuses_writes_and_still_reads_what_is_left(ring: Ring) -> None:
    ring.write(rows(0, 4))
    ring.close_for_writing()
    assert ring.closed
    with pytest.raises(RingClosed):
        ring.write(rows(4, 1))
    assert (take(ring, 10) == rows(0, 4)).all()


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
        read = 0
        while read < total:
            out = take(ring, 500)
            assert (out == rows(read, len(out))).all()
            read += len(out)
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


@pytest.mark.parametrize("machine", ["x86_64", "AMD64", "amd64"])
def test_x86_64_needs_no_store_order_caveat(machine: str) -> None:
    assert store_order_caveat(machine) is None


@pytest.mark.parametrize("machine", ["aarch64", "arm64", "armv7l", "ppc64le", "riscv64", "i686", ""])
def test_other_machines_get_a_caveat_naming_them(machine: str) -> None:
    caveat = store_order_caveat(machine)
    assert caveat is not None and "x86-64" in caveat and repr(machine or "unknown") in caveat


def test_creating_rings_on_another_cpu_warns_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from clickstream.workers import ring as ring_module

    ring_module._warn_about_store_order.cache_clear()
    monkeypatch.setattr("platform.machine", lambda: "aarch64")
    created = [Ring.create(64, name=segment_name(os.getpid(), 903 + i)) for i in range(2)]
    try:
        warnings = [r for r in caplog.records if r.name == "clickstream.ring"]
        assert len(warnings) == 1 and "'aarch64'" in warnings[0].getMessage()
    finally:
        for ring in created:
            ring.close()
            ring.unlink()
        ring_module._warn_about_store_order.cache_clear()
