"""A generator process: renders its shard's stream into its ring, as fast as the ring drains.

Started by the supervisor (server/supervisor.py) through multiprocessing's "spawn" context, so it shares
nothing with the server but the ring. It resumes at the ring's head, so a restarted producer continues
its shard exactly where the dead one stopped. It exits when the ring is closed, on SIGTERM, or when its
parent dies (Linux delivers SIGKILL through PR_SET_PDEATHSIG; elsewhere it notices its new parent pid).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time
from dataclasses import dataclass

from ..errors import EXIT_BOOT_ERROR, EXIT_OK
from ..limits import DEFAULT_START_MS
from .generator import EventGenerator
from .model import ModelConfig
from .places import City
from .ring import Ring, RingClosed

BLOCK_ROWS = 4096
IDLE_SLEEP_S = 0.004  # ring full: it holds ~28,000 rows, 28 ms even at a million events/s: no hurry
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ProducerSpec:
    """Everything a producer needs, pickled into the child."""

    model: ModelConfig
    shard: int
    ring_name: str
    cities: tuple[City, ...]
    parent_pid: int
    # The stream this worker renders: event time of its position 0, and its share of the store's users
    # (worker w of W passes partition=w, partitions=W, so no user is in two workers' sessions).
    start_ms: int = DEFAULT_START_MS
    partition: int = 0
    partitions: int = 1


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except OSError:
            pass


def run_producer(spec: ProducerSpec) -> None:
    """Process entry point."""
    _die_with_parent()
    # Ctrl-C reaches the whole process group: the supervisor decides when producers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        ring = Ring.attach(spec.ring_name)
        generator = EventGenerator(spec.model, spec.shard, spec.start_ms, spec.partition, spec.partitions,
                                   cities=spec.cities)
        ring.format(generator.row_bytes)
    except Exception as exc:  # a boot error: report it and exit with the code that says so
        print(f"clickstream worker {spec.shard}: cannot start: {exc}", file=sys.stderr, flush=True)
        sys.exit(EXIT_BOOT_ERROR)
    ring.set_producer_pid(os.getpid())
    try:
        produce(ring, generator, spec)
    except RingClosed:
        pass
    finally:
        ring.close()
    sys.exit(EXIT_OK)


def produce(ring: Ring, generator: EventGenerator, spec: ProducerSpec) -> None:
    """Render blocks straight into the ring's free slots. A block waits until BLOCK_ROWS slots are free (or
    all the slots up to the end of the ring, where a block is cut short): rendering whatever few slots a
    fast consumer frees would cost more per row."""
    position = ring.head  # resume where the previous producer of this ring stopped
    while not ring.closed:
        ring.beat()
        if os.getppid() != spec.parent_pid:
            return
        space = ring.writable(BLOCK_ROWS)
        if len(space) < min(BLOCK_ROWS, ring.capacity - position % ring.capacity):
            time.sleep(IDLE_SLEEP_S)
            continue
        generator.render(position, len(space), space)
        ring.publish(len(space))
        position += len(space)
