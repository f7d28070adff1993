"""One connection's stream: paced batches of whole lines into a chunked HTTP response.

The loop sends, each tick, every event that has come due (pacing.py), then sleeps until the next one
is due. `response.write` awaits the transport's drain once more than 64 KiB are buffered: a slow client
slows only its own stream (whose schedule then slips, see Pacer), and nothing is buffered without bound.
Every write is whole lines (or whole Arrow IPC messages), so a stream that ends for any reason (its count,
its duration, server shutdown, a client that goes away) ends on a whole line (or record batch).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

from aiohttp import web

from .metrics import Metrics
from .pacing import Pacer
from .params import StreamRequest
from .sources import Source

log = logging.getLogger("clickstream.stream")

STREAM_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # proxies (nginx, Railway's edge) must not buffer a stream
}
CONTENT_TYPES = {"ndjson": "application/x-ndjson", "sse": "text/event-stream",
                 "arrow": "application/vnd.apache.arrow.stream"}


class StreamSettings:
    def __init__(self, tick_s: float, max_burst_s: float, stopping: asyncio.Event) -> None:
        self.tick_s = tick_s
        self.max_burst_s = max_burst_s
        self.stopping = stopping  # set at shutdown: streams end at their next tick


def to_sse(data: bytes | bytearray, first_id: int) -> bytes:
    """One Server-Sent Event per line, `id:` counting the stream's events from 1."""
    lines = bytes(data).split(b"\n")[:-1]
    return b"".join(b"id: %d\ndata: %s\n\n" % (first_id + i, line.rstrip()) for i, line in enumerate(lines))


async def run_stream(
    request: web.Request, source: Source, params: StreamRequest, metrics: Metrics, settings: StreamSettings
) -> web.StreamResponse:
    response = web.StreamResponse(headers={**STREAM_HEADERS, "Content-Type": CONTENT_TYPES[params.format]})
    response.enable_chunked_encoding()
    stats = metrics.open_stream(request.path, params.rate_eps)
    loop = asyncio.get_running_loop()
    start_s = loop.time()
    wall_offset_s = time.time() - start_s  # event times are loop times; timestamps are wall-clock
    pacer = Pacer(params.rate_eps, start_s, settings.tick_s, settings.max_burst_s) if params.rate_eps else None
    limit = params.limit if params.limit is not None else math.inf
    end_s = start_s + params.duration_s if params.duration_s is not None else math.inf
    sent = 0
    disconnected = False
    try:
        await response.prepare(request)  # in the try: a client can leave before the headers, too
        while sent < limit and not settings.stopping.is_set():
            now = loop.time()
            final = now >= end_s  # the last pass sends everything due by the end, then stops
            want = pacer.due(min(now, end_s)) if pacer else source.batch_rows
            want = int(min(want, limit - sent))
            starved = False
            while want > 0:
                batch = min(want, source.batch_rows)
                times_ms = pacer.event_times_ms(batch, wall_offset_s) if pacer else None
                data, got = await source.read(batch, times_ms)
                if got == 0:
                    starved = True  # the rings ran dry: try again next tick
                    break
                if params.format == "sse":
                    data = to_sse(data, sent + 1)
                await response.write(data)
                metrics.sent(stats, got, len(data))
                sent += got
                want -= got
                if pacer:
                    pacer.record(got)
            if final or sent >= limit:
                break
            now = loop.time()
            wake = min(pacer.next_wake_s(now, limit - 1) if pacer else now, end_s)
            if starved:
                wake = max(wake, now + settings.tick_s)  # never spin on empty rings
            if wake > now:
                await asyncio.sleep(wake - now)
            else:
                await asyncio.sleep(0)  # a stream with more due, or unpaced, still lets other streams run
        # What closes the format (an Arrow stream's end marker). A stream cut short by shutdown is closed the
        # same way: every batch sent is whole, and the client compares the rows with the count it asked for.
        if tail := source.finish():
            await response.write(tail)
        await response.write_eof()
    except ConnectionError:
        # The client went away: a normal end of a stream. ConnectionError covers ConnectionResetError,
        # aiohttp's ClientConnectionResetError, and the bare ConnectionError("Connection lost") that a write
        # waiting for the transport to drain gets (seeded.ClientGone is a ConnectionResetError too).
        disconnected = True
    except Exception:
        # A bug after the headers went out: a 500 can no longer be sent, and ending the body cleanly would
        # pass a short stream off as complete. Drop the connection so the client sees a torn body.
        log.exception("stream %s failed after %d events", request.path_qs, sent)
        if request.transport is not None:
            request.transport.abort()
    finally:
        metrics.close_stream(stats, disconnected)
        source.close()
    return response
