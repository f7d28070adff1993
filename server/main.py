"""The server's lifecycle: boot, serve, and stop cleanly on a signal or when the workers cannot be kept up.

Signals only queue a request (gunicorn's habit); this coroutine acts on them. The first SIGTERM or SIGINT
stops accepting connections, ends every open stream on a whole line within the grace period, stops the
workers and unlinks every ring; a second one skips the grace period. Exit codes are a protocol
(`clickstream.errors`): 0 clean stop, 3 could not start (the address is in use, or the workers could not
boot), 4 halted on a worker crash loop.

The ports are bound first, before the catalog and the workers are built: a port in use fails at once, in
one line, instead of after the seconds a boot takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from aiohttp import web

from ..errors import EXIT_BOOT_ERROR, EXIT_HALTED, EXIT_OK, Halt
from ..workers.catalog import Catalog
from ..workers.places import load_cities_in_child
from .app import build_app
from .config import ServerConfig
from .guard import announce_bind, hide_versions
from .limits import LISTEN_BACKLOG, ConnectionGuard, start_guarded_site
from .logs import request_error_log
from .metrics import Metrics
from .rings import SiteRings
from .seeded import SeededPool
from .site import Site
from .stream import StreamSettings
from .supervisor import LiveStore, Supervisor
from .tcp_feed import start_tcp_feed
from .users import UserLines

log = logging.getLogger("clickstream.server")

HALT_POLL_S = 0.2
ABANDON_WAIT_S = 0.5  # after the grace period, what dropped connections get to unwind
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def serve(config: ServerConfig) -> int:
    """Run the server until a signal or a halt; returns the exit code."""
    loop = asyncio.get_running_loop()
    requests: asyncio.Queue[str] = asyncio.Queue()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, requests.put_nowait, sig.name)
    try:
        with _bound(config.host, config.port) as http_socket, _bound_optional(config) as tcp_socket:
            async with _running_site(config, requests) as site:
                if site is None:
                    return EXIT_OK  # a signal arrived during boot
                return await _serve_site(site, http_socket, tcp_socket, requests)
    except Halt as exc:
        log.error("%s", exc)
        return exc.exit_code
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
        log.info("stopped")


@contextlib.contextmanager
def _bound(host: str, port: int) -> Any:
    """A listening socket on (host, port); an address in use is a one-line Halt, not a traceback."""
    try:
        sock = socket.create_server((host, port), reuse_port=False, backlog=LISTEN_BACKLOG)
    except OSError as exc:
        reason = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc.strerror})"
        raise Halt(f"{host}:{port} {reason}: stop what holds it, or choose another port", EXIT_BOOT_ERROR) from None
    with sock:
        yield sock


@contextlib.contextmanager
def _bound_optional(config: ServerConfig) -> Any:
    if config.socket_port is None:
        yield None
        return
    with _bound(config.host, config.socket_port) as sock:
        yield sock


@contextlib.asynccontextmanager
async def _running_site(config: ServerConfig, requests: asyncio.Queue[str]) -> AsyncIterator[Site | None]:
    """The catalog, the workers and what the routes share; the workers and rings go on the way out."""
    loop = asyncio.get_running_loop()
    live = LiveStore.at_boot(config.instance, config.workers, int(time.time() * 1000), config.replica_index,
                             config.instances)
    supervisor = Supervisor(config, live)
    generators: SeededPool | None = None
    users: UserLines | None = None
    try:
        log.info("building the catalog: %d users, %d products, seed %d",
                 config.model.max_users, config.model.max_products, config.model.seed)
        cities = await loop.run_in_executor(None, load_cities_in_child, config.model)
        catalog = Catalog.build(config.model, cities, with_names=True)
        await _until_signal(supervisor.start(cities), requests)
        if supervisor.workers == [] or not all(w.ring.formatted for w in supervisor.workers):
            yield None
            return
        rings = SiteRings([w.ring for w in supervisor.workers], supervisor.workers[0].ring.row_bytes)
        generators = SeededPool(config.model, catalog, cities, config.max_seeded_streams, config.max_seeds)
        users = UserLines(catalog, live.start_ms)
        settings = StreamSettings(config.tick_s, config.max_burst_s, asyncio.Event())
        guard = ConnectionGuard(config.max_connections, config.header_timeout_s)
        yield Site(config, supervisor, rings, catalog, generators, Metrics(), settings, users, guard, live)
    finally:
        if generators is not None:
            generators.close()
        if users is not None:
            users.close()
        await supervisor.stop()  # stops the producers and unlinks every ring, whatever happened above


async def _serve_site(site: Site, http_socket: socket.socket, tcp_socket: socket.socket | None,
                      requests: asyncio.Queue[str]) -> int:
    config = site.config
    hide_versions()
    runner = web.AppRunner(build_app(site), handle_signals=False, shutdown_timeout=config.grace_s,
                           access_log=None, logger=request_error_log())
    await runner.setup()
    tcp_server: asyncio.Server | None = None
    http_server = await start_guarded_site(runner, site.guard, http_socket)
    try:
        if tcp_socket is not None:
            tcp_server = await start_tcp_feed(site, tcp_socket)
            print(f"clickstream: NDJSON socket feed on {config.host}:{tcp_socket.getsockname()[1]}", flush=True)
        # Tests and scripts read this line to learn the port (--port 0 picks a free one).
        port = http_socket.getsockname()[1]
        announce_bind(config.host, port, config.auth_token is not None)
        print(f"clickstream: listening on http://{config.host}:{port} with {config.workers} workers", flush=True)
        exit_code = await _until_stop(site, requests)
        # Graceful stop: no new connections, open streams end at their next tick on a whole line.
        site.settings.stopping.set()
        http_server.close()
        if tcp_server is not None:
            tcp_server.close()
        await _cleanup_within_grace(site, runner, requests)
        return exit_code
    finally:
        http_server.close()
        await runner.cleanup()  # a second call after a finished cleanup does nothing


async def _until_stop(site: Site, requests: asyncio.Queue[str]) -> int:
    """Wait for a stop signal (exit 0) or a supervisor halt (exit 4)."""
    while not site.supervisor.halted:
        try:
            name = await asyncio.wait_for(requests.get(), HALT_POLL_S)
        except TimeoutError:
            continue
        log.info("%s: stopping (send it again to skip the %.0f s grace period)", name, site.config.grace_s)
        return EXIT_OK
    log.error("halting: %s", site.supervisor.halted)
    return EXIT_HALTED


async def _cleanup_within_grace(site: Site, runner: web.AppRunner, requests: asyncio.Queue[str]) -> None:
    """Wait for open streams to end, for the grace period at most, and less if a second signal comes."""
    cleanup = asyncio.ensure_future(runner.cleanup())
    signal_again = asyncio.ensure_future(requests.get())
    done, _ = await asyncio.wait({cleanup, signal_again}, timeout=site.config.grace_s,
                                 return_when=asyncio.FIRST_COMPLETED)
    if signal_again in done:
        log.warning("second signal: stopping now")
        cleanup.cancel()
    elif cleanup not in done:
        # The grace period is over: a write that is still waiting (a client that stopped reading) is
        # abandoned. Its connection is dropped, so its handler ends, and aiohttp's cleanup with it.
        log.warning("grace period over: dropping %d connections still open", site.guard.abort_all())
        await asyncio.wait({cleanup}, timeout=ABANDON_WAIT_S)
        cleanup.cancel()
    signal_again.cancel()
    await asyncio.gather(cleanup, signal_again, return_exceptions=True)


async def _until_signal(work: Coroutine[Any, Any, None], requests: asyncio.Queue[str]) -> None:
    """Run `work` unless a stop signal comes first (then leave it cancelled)."""
    task = asyncio.ensure_future(work)
    signal_wait = asyncio.ensure_future(requests.get())
    done, _ = await asyncio.wait({task, signal_wait}, return_when=asyncio.FIRST_COMPLETED)
    if signal_wait in done:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return
    signal_wait.cancel()
    task.result()


def run(config: ServerConfig) -> int:
    logging.basicConfig(
        level=config.logging_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        import uvloop
    except ImportError:  # uvloop has no Windows build; asyncio's own loop still works
        return asyncio.run(serve(config))
    return uvloop.run(serve(config))
