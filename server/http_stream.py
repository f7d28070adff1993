"""One HTTP stream: the paced batches (stream.py) framed as NDJSON, Server-Sent Events or Arrow, in a chunked
response.

`response.write` awaits the transport's drain once more than 64 KiB are buffered: that is the backpressure
from a slow client. How a client tells a finished stream from one cut short: NDJSON and Arrow streams
deliver exactly `count` events (or rate x duration); fewer means the stream was cut (server shutdown, the
client's own timeout). An SSE stream ends with an `end` event whose data says `complete` or `shutdown`.
"""

from __future__ import annotations

import json
import logging

from aiohttp import web

from .metrics import Metrics
from .params import StreamRequest
from .sources import Source
from .stream import StreamSettings, paced_batches

log = logging.getLogger("clickstream.stream")

STREAM_HEADERS = {
    "X-Accel-Buffering": "no",  # proxies (nginx, Railway's edge) must not buffer a stream
}
# Event-time seconds per wall second: "1" (clock=wall), "auto" (the store's clock: /metrics shows the live
# site's figure as event_time_speed), "unpaced" (a seeded stream read as fast as the client reads).
SPEED_HEADER = "Clickstream-Speed"
CONTENT_TYPES = {"ndjson": "application/x-ndjson", "sse": "text/event-stream",
                 "arrow": "application/vnd.apache.arrow.stream"}


def to_sse(data: bytes | bytearray, first_id: int) -> bytes:
    """One Server-Sent Event per line, `id:` counting the stream's events from 1."""
    lines = bytes(data).split(b"\n")[:-1]
    return b"".join(b"id: %d\ndata: %s\n\n" % (first_id + i, line.rstrip()) for i, line in enumerate(lines))


def sse_end(events: int, cut: bool) -> bytes:
    """The last event of an SSE stream: how it ended and how many events it carried."""
    body = json.dumps({"reason": "shutdown" if cut else "complete", "events": events})
    return b"event: end\ndata: %s\n\n" % body.encode()


async def run_stream(
    request: web.Request, source: Source, params: StreamRequest, metrics: Metrics, settings: StreamSettings
) -> web.StreamResponse:
    headers = {**STREAM_HEADERS, "Content-Type": CONTENT_TYPES[params.format]}
    if source.speed is not None:
        headers[SPEED_HEADER] = source.speed
    try:
        await source.open()  # before the headers: what it refuses is still a 4xx
    except BaseException:
        source.close()
        raise
    response = web.StreamResponse(headers=headers)
    response.enable_chunked_encoding()
    stats = metrics.open_stream(request.path, params.rate_eps)
    sse = params.format == "sse"
    sent = 0
    disconnected = False
    try:
        await response.prepare(request)  # in the try: a client can leave before the headers, too
        async for data, got in paced_batches(source, settings, params.rate_eps, params.limit, params.duration_s):
            await response.write(to_sse(data, sent + 1) if sse else data)
            metrics.sent(stats, got, len(data))
            sent += got
        # What closes the format (an Arrow stream's end marker, SSE's end event). A stream cut short by
        # shutdown is closed the same way: every batch sent is whole.
        tail = sse_end(sent, settings.stopping.is_set()) if sse else source.finish()
        if tail:
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
