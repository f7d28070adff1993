"""A raw TCP port that writes NDJSON lines to every connected client: for Spark's `format("socket")` and nc.

Spark's socket source speaks no HTTP, so a socket source pointed at the HTTP port could never work. Each
client gets the live site's events at `socket_rate_eps`, through the same paced loop as an HTTP stream
(stream.py), until it disconnects or the server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import TYPE_CHECKING

from .limits import LISTEN_BACKLOG
from .params import STORE_CLOCK
from .sources import LiveInteractions
from .stream import paced_batches

if TYPE_CHECKING:
    from .site import Site


async def start_tcp_feed(site: Site, sock: socket.socket) -> asyncio.Server:
    """Serve the feed on a listening socket (bound by the lifecycle, main.py)."""

    async def serve_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        rate = site.config.socket_rate_eps
        stats = site.metrics.open_stream("socket", rate)
        try:
            source = LiveInteractions(site.rings, rate, STORE_CLOCK, site.metrics.live_clock)
            async for data, got in paced_batches(source, site.settings, rate):
                if reader.at_eof():
                    break  # the client closed its side
                writer.write(data)
                await writer.drain()  # backpressure from a slow reader
                site.metrics.sent(stats, got, len(data))
        except (ConnectionError, OSError):
            pass  # the client went away
        finally:
            site.metrics.close_stream(stats, disconnected=not site.settings.stopping.is_set())
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    return await asyncio.start_server(serve_client, sock=sock, backlog=LISTEN_BACKLOG)
