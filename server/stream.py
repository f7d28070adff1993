"""The one paced loop: a stream's batches of whole lines, each sent when it falls due.

`paced_batches` yields, each tick, every event that has come due (pacing.py), then sleeps until the next one
is due; without a rate it yields batches as fast as the consumer takes them. The consumer frames and writes
each batch (HTTP in http_stream.py, raw TCP in tcp_feed.py) before asking for the next, so a slow client
slows only its own stream (whose schedule then slips, see Pacer), and nothing is buffered without bound.
Every batch is whole lines (or whole Arrow IPC messages), so a stream that ends for any reason ends on one.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass

from .pacing import Pacer
from .sources import Source

# A stream that is behind sends what is due batch after batch, and a write that the kernel takes at once does
# not suspend. Without a turn limit, 200 streams filling their clients' socket buffers held the event loop for
# seconds: each ran its whole catch-up before the next got a turn, and /health answered after 1-3 s.
TURN_S = 0.002


@dataclass(frozen=True)
class StreamSettings:
    tick_s: float
    max_burst_s: float
    stopping: asyncio.Event  # set at shutdown: streams end at their next tick


async def paced_batches(
    source: Source, settings: StreamSettings, rate_eps: int | None, limit: int | None = None,
    duration_s: float | None = None,
) -> AsyncIterator[tuple[bytes | bytearray, int]]:
    """(data, events) batches of `source` at `rate_eps` (None: unpaced), until `limit` events, `duration_s`
    seconds or shutdown, whichever comes first."""
    loop = asyncio.get_running_loop()
    start_s = loop.time()
    pacer = Pacer(rate_eps, start_s, settings.tick_s, settings.max_burst_s) if rate_eps else None
    most = limit if limit is not None else math.inf
    end_s = start_s + duration_s if duration_s is not None else math.inf
    sent = 0
    while sent < most and not settings.stopping.is_set():
        now = loop.time()
        final = now >= end_s  # the last pass sends everything due by the end, then stops
        want = int(min(pacer.due(min(now, end_s)) if pacer else source.batch_rows, most - sent))
        starved = False
        turn_start_s = now
        while want > 0:
            data, got = await source.read(min(want, source.batch_rows))
            if got == 0:
                starved = True  # the rings ran dry: try again next tick
                break
            yield data, got
            sent += got
            want -= got
            if pacer:
                pacer.record(got)
            if loop.time() - turn_start_s >= TURN_S:
                await asyncio.sleep(0)  # the other streams' (and /health's) turn
                turn_start_s = loop.time()
        if final or sent >= most:
            break
        now = loop.time()
        wake = min(pacer.next_wake_s(now, most - 1) if pacer else now, end_s)
        if starved:
            wake = max(wake, now + settings.tick_s)  # never spin on empty rings
        # Sleep until due; a stream with more due, or unpaced, still lets other streams run (sleep(0)).
        await asyncio.sleep(max(0.0, wake - now))
