"""A raw TCP port that writes NDJSON lines to every connected client: for Spark's `format("socket")` and nc.

Spark's socket source speaks no HTTP, so the original README's example (the socket source pointed at the
HTTP port) could never work. Each client gets the live site's events at `socket_rate_eps`, paced like an
HTTP stream, until it disconnects or the server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from .pacing import Pacer
from .sources import MAX_BATCH_ROWS, LiveInteractions

if TYPE_CHECKING:
    from .app import Site

log = logging.getLogger("clickstream.socket")


async def start_socket_feed(site: Site, host: str, port: int) -> asyncio.Server:
    async def serve_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        source = LiveInteractions(site.feed)
        pacer = Pacer(site.config.socket_rate_eps, loop.time(), site.config.tick_s, site.config.max_burst_s)
        wall_offset_s = time.time() - loop.time()
        stats = site.metrics.open_stream("socket", site.config.socket_rate_eps)
        try:
            while not site.settings.stopping.is_set() and not reader.at_eof():
                want = min(pacer.due(loop.time()), MAX_BATCH_ROWS)
                if want:
                    data, got = await source.read(want, pacer.event_times_ms(want, wall_offset_s))
                    if got:
                        writer.write(data)
                        await writer.drain()  # backpressure from a slow reader
                        pacer.record(got)
                        site.metrics.sent(stats, got, len(data))
                now = loop.time()
                await asyncio.sleep(max(0.0, pacer.next_wake_s(now) - now))
        except (ConnectionError, OSError):
            pass  # the client went away
        finally:
            site.metrics.close_stream(stats, disconnected=not site.settings.stopping.is_set())
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    return await asyncio.start_server(serve_client, host, port, reuse_address=True)
