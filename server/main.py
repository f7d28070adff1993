"""The server's lifecycle: boot, serve, and stop cleanly on a signal or when the workers cannot be kept up.

Signals only queue a request (gunicorn's habit); this coroutine acts on them. The first SIGTERM or SIGINT
stops accepting connections, ends every open stream on a whole line within the grace period, stops the
workers and unlinks every ring; a second one skips the grace period. Exit codes are a protocol:
0 clean stop, 3 the workers could not start (a boot error), 4 halted on a worker crash loop.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Coroutine
from typing import Any

from aiohttp import web

from ..workers.catalog import Catalog
from .app import Site, build_app
from .config import ServerConfig
from .feed import SiteFeed
from .guard import announce_bind, hide_versions
from .limits import ConnectionGuard, start_guarded_site
from .logs import request_error_log
from .metrics import Metrics
from .seeded import SeededPool
from .socket_feed import start_socket_feed
from .stream import StreamSettings
from .supervisor import Supervisor, SupervisorHalt, load_cities_in_child
from .users import UserLines

log = logging.getLogger("clickstream.server")

EXIT_OK, EXIT_BOOT_ERROR, EXIT_HALTED = 0, 3, 4
HALT_POLL_S = 0.2
ABANDON_WAIT_S = 0.5  # after the grace period, what dropped connections get to unwind


async def serve(config: ServerConfig) -> int:
    loop = asyncio.get_running_loop()
    requests: asyncio.Queue[str] = asyncio.Queue()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, requests.put_nowait, sig.name)

    supervisor = Supervisor(config)
    runner: web.AppRunner | None = None
    socket_server: asyncio.Server | None = None
    generators: SeededPool | None = None
    users: UserLines | None = None
    http_server: asyncio.Server | None = None
    exit_code = EXIT_OK
    try:
        log.info("building the catalog: %d users, %d products, seed %d",
                 config.model.max_users, config.model.max_products, config.model.seed)
        cities = await loop.run_in_executor(None, load_cities_in_child, config.model.city_count)
        catalog = Catalog.build(config.model, cities, with_names=True)
        try:
            await _until_signal(supervisor.start(cities), requests)
        except SupervisorHalt as exc:
            log.error("%s", exc)
            return EXIT_BOOT_ERROR
        if supervisor.workers == [] or not all(w.ring.formatted for w in supervisor.workers):
            return EXIT_OK  # a signal arrived during boot
        row_bytes = supervisor.workers[0].ring.row_bytes
        feed = SiteFeed([w.ring for w in supervisor.workers], row_bytes)
        generators = SeededPool(config.model, catalog, cities, config.max_seeded_streams, config.max_seeds)
        users = UserLines(catalog)
        guard = ConnectionGuard(config.max_connections, config.header_timeout_s)
        settings = StreamSettings(config.tick_s, config.max_burst_s, asyncio.Event())
        site = Site(config, supervisor, feed, catalog, generators, Metrics(), settings, users, guard)
        hide_versions()
        runner = web.AppRunner(build_app(site), handle_signals=False, shutdown_timeout=config.grace_s,
                               access_log=None, logger=request_error_log())
        await runner.setup()
        http_server = await start_guarded_site(runner, guard, config.host, config.port)
        port = http_server.sockets[0].getsockname()[1]
        announce_bind(config.host, port, config.auth_token is not None)
        if config.socket_port is not None:
            socket_server = await start_socket_feed(site, config.host, config.socket_port)
            socket_port = socket_server.sockets[0].getsockname()[1]
            print(f"clickstream: NDJSON socket feed on {config.host}:{socket_port}", flush=True)
        # Tests and scripts read this line to learn the port (--port 0 picks a free one).
        print(f"clickstream: listening on http://{config.host}:{port} with {config.workers} workers", flush=True)

        while True:
            if supervisor.halted:
                log.error("halting: %s", supervisor.halted)
                exit_code = EXIT_HALTED
                break
            try:
                name = await asyncio.wait_for(requests.get(), HALT_POLL_S)
            except TimeoutError:
                continue
            log.info("%s: stopping (send it again to skip the %.0f s grace period)", name, config.grace_s)
            break

        # Graceful stop: no new connections, open streams end at their next tick on a whole line.
        settings.stopping.set()
        http_server.close()
        if socket_server is not None:
            socket_server.close()
        cleanup = asyncio.ensure_future(runner.cleanup())
        signal_again = asyncio.ensure_future(requests.get())
        done, _ = await asyncio.wait({cleanup, signal_again}, timeout=config.grace_s,
                                     return_when=asyncio.FIRST_COMPLETED)
        if signal_again in done:
            log.warning("second signal: stopping now")
            cleanup.cancel()
        elif cleanup not in done:
            # The grace period is over: a write that is still waiting (a client that stopped reading) is
            # abandoned. Its connection is dropped, so its handler ends, and aiohttp's cleanup with it.
            log.warning("grace period over: dropping %d connections still open", guard.abort_all())
            await asyncio.wait({cleanup}, timeout=ABANDON_WAIT_S)
            cleanup.cancel()
        signal_again.cancel()
        await asyncio.gather(cleanup, signal_again, return_exceptions=True)
        runner = None
    finally:
        if http_server is not None:
            http_server.close()
        if runner is not None:
            await runner.cleanup()
        if generators is not None:
            generators.close()
        if users is not None:
            users.close()
        await supervisor.stop()  # stops the producers and unlinks every ring, whatever happened above
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("stopped")
    return exit_code


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
        level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        import uvloop
    except ImportError:  # uvloop has no Windows build; asyncio's own loop still works
        return asyncio.run(serve(config))
    return uvloop.run(serve(config))
