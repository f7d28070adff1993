"""Connection limits: a cap on open connections, and a deadline for every request's headers.

aiohttp has neither. Its keep-alive timer is not reset by incoming bytes, but aiohttp releases before 3.14
do not start it until a first request completes, and a connection trickling its headers (slowloris) was
held open indefinitely. So every connection's protocol is wrapped (`GuardedProtocol`): the wrapper counts
the connection and arms a timer when it opens and whenever its last request ends. The timer is disarmed
when a request's headers are complete (the app's first middleware runs); if it fires first, the connection
is closed. One rule, as Go's http.Server applies it when only ReadHeaderTimeout is set: a connection has
`header_timeout_s` to deliver a complete request head, counted from its opening or from the end of its
previous request (an idle kept-alive connection is closed after as long).

Past `max_connections` open connections, a new request gets a JSON 503 with `Retry-After`, except /health
and /metrics, which always answer (monitoring must see an overloaded server). A further CONTROL_RESERVE
connections are accepted for those; beyond that, new connections are closed as soon as they open, so the
process always keeps file descriptors for its rings, pipes and logs.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
from collections.abc import Awaitable, Callable
from typing import Any, cast

from aiohttp import web

log = logging.getLogger("clickstream.limits")

CONTROL_RESERVE = 32  # connections past the cap still accepted, for /health and /metrics
RESERVED_FDS = 128  # rings, worker pipes, the listening sockets, logs, executors' and uvloop's own
ALWAYS_ANSWER = frozenset({"/health", "/metrics"})
RETRY_AFTER_S = 2
# Connections the kernel queues until the server accepts them. `loop.create_server(sock=...)` calls listen()
# again with its own default (100), so every server passes this: with 200 clients connecting at once, a
# 100-deep queue overflowed and a /health probe's SYN was dropped (answered 3 s later, after a retransmit).
LISTEN_BACKLOG = 1024


def default_max_connections() -> int:
    """The file-descriptor soft limit less what the process itself needs and the control reserve."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 16
    return max(16, soft - RESERVED_FDS - CONTROL_RESERVE)


def overloaded(message: str, retry_after_s: int = RETRY_AFTER_S) -> web.Response:
    body = {"error": "overloaded", "status": 503, "message": message, "retry_after_s": retry_after_s}
    return web.json_response(body, status=503, headers={"Retry-After": str(retry_after_s)})


class GuardedProtocol(asyncio.Protocol):
    """Forwards every transport event to aiohttp's protocol, and keeps the connection's header deadline."""

    def __init__(self, inner: Any, guard: ConnectionGuard) -> None:
        self.inner = inner  # aiohttp's RequestHandler
        self.guard = guard
        self.transport: asyncio.Transport | None = None
        self.requests = 0  # requests whose head arrived and whose handler has not returned
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.guard.open.add(self)
        self.inner.connection_made(transport)
        if len(self.guard.open) > self.guard.max_connections + CONTROL_RESERVE:
            self.guard.refused_total += 1
            transport.abort()  # no file descriptor left to spare: not even /health
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.guard.open.discard(self)
        self.transport = None
        self.inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()  # type: ignore[no-any-return]

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    # -- the header deadline ----------------------------------------------------------------------------

    def _arm(self) -> None:
        self._disarm()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.guard.header_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        transport = self.transport
        if self.requests or transport is None:
            return
        self.guard.header_timeouts_total += 1
        log.debug("closing a connection that sent no complete request head in %.1f s", self.guard.header_timeout_s)
        if transport.get_write_buffer_size():
            transport.abort()  # the tail of a response the client does not read: do not wait for it
        else:
            transport.close()

    def request_started(self) -> None:
        self.requests += 1
        self._disarm()

    def request_finished(self) -> None:
        self.requests -= 1
        if self.requests == 0 and self.transport is not None and not self.transport.is_closing():
            self._arm()


class ConnectionGuard:
    def __init__(self, max_connections: int, header_timeout_s: float) -> None:
        self.max_connections = max_connections or default_max_connections()
        self.header_timeout_s = header_timeout_s
        self.open: set[GuardedProtocol] = set()
        self.refused_total = 0  # connections closed on opening (past the cap and the reserve)
        self.rejected_total = 0  # requests answered 503 past the cap
        self.header_timeouts_total = 0

    def protocol_factory(self, make_protocol: Callable[[], Any]) -> Callable[[], GuardedProtocol]:
        """Wraps aiohttp's protocol factory (`AppRunner.server`) for `loop.create_server`."""
        return lambda: GuardedProtocol(make_protocol(), self)

    def abort_all(self) -> int:
        """Drop every connection at once (the shutdown deadline): stalled writes end with an error."""
        protocols = [p for p in self.open if p.transport is not None]
        for protocol in protocols:
            assert protocol.transport is not None
            protocol.transport.abort()
        return len(protocols)

    def snapshot(self) -> dict[str, int]:
        """For /metrics."""
        return {
            "open_connections": len(self.open),
            "max_connections": self.max_connections,
            "connections_refused_total": self.refused_total,
            "requests_rejected_total": self.rejected_total,
            "header_timeouts_total": self.header_timeouts_total,
        }

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """The first middleware: the request's head is complete; past the cap, only monitoring answers."""
        protocol = _protocol_of(request)
        if protocol is not None:
            protocol.request_started()
        try:
            if len(self.open) > self.max_connections and request.path not in ALWAYS_ANSWER:
                self.rejected_total += 1
                return overloaded(f"{self.max_connections} connections are open: retry later")
            return await handler(request)
        finally:
            if protocol is not None:
                protocol.request_finished()


def _protocol_of(request: web.Request) -> GuardedProtocol | None:
    transport = request.transport
    if transport is None:
        return None
    protocol = transport.get_protocol()
    return protocol if isinstance(protocol, GuardedProtocol) else None


async def start_guarded_site(runner: web.AppRunner, guard: ConnectionGuard, sock: socket.socket) -> asyncio.Server:
    """Serve the runner's app on a listening socket through the guard (what `web.SockSite` does, with the
    protocol wrapped).

    The caller closes the returned server before `runner.cleanup()`.
    """
    assert runner.server is not None, "call runner.setup() first"
    loop = asyncio.get_running_loop()
    return await loop.create_server(guard.protocol_factory(runner.server), sock=sock, backlog=LISTEN_BACKLOG)
