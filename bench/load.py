"""Hostile and unlucky loads, one after the other: connections held, memory per client, /health latency.

    python bench/load.py http://127.0.0.1:8000 --server-pid PID [--clients 200]

Each load is held for a few seconds while /health is timed; then it is released and the next one starts:
idle connections, slowloris (headers trickled), live and seeded streams whose clients do not read, user
streams, and abandoned seeded requests. "held" is how many of the load's connections the server still had
open at the end (the header timeout closes idle and trickling ones); "KiB/client" is the growth of the
server's PSS (main process and workers) divided by the clients of the load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import psutil

HOLD_S = 6.0


def pss_kib(pid: int) -> float:
    root = psutil.Process(pid)
    total = 0
    for proc in (root, *root.children(recursive=True)):
        with contextlib.suppress(psutil.Error):
            total += proc.memory_full_info().pss
    return total / 1024


@dataclass
class Row:
    load: str
    clients: int
    held: int
    kib_per_client: float
    health_p50_ms: float
    health_p95_ms: float
    health_failures: int


async def health_latency(session: aiohttp.ClientSession, base: str, seconds: float) -> tuple[list[float], int]:
    samples: list[float] = []
    failures = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.perf_counter()
        try:
            async with session.get(base + "/health", timeout=aiohttp.ClientTimeout(total=5)) as response:
                await response.read()
                if response.status != 200:
                    failures += 1
            samples.append((time.perf_counter() - started) * 1000)
        except (aiohttp.ClientError, TimeoutError):
            failures += 1
        await asyncio.sleep(0.1)
    return samples, failures


def raw_connection(host: str, port: int, small_buffer: bool = False) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if small_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a client that does not read
    sock.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        sock.connect((host, port))
    return sock


def still_open(sock: socket.socket) -> bool:
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


async def hold_sockets(host: str, port: int, clients: int, request: bytes | None, trickle: bool,
                       small_buffer: bool, seconds: float) -> int:
    socks = [raw_connection(host, port, small_buffer) for _ in range(clients)]
    await asyncio.sleep(0.2)
    for sock in socks:
        with contextlib.suppress(OSError):
            if request is not None:
                sock.send(request)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await asyncio.sleep(0.5)
        if trickle:
            for sock in socks:
                with contextlib.suppress(OSError):
                    sock.send(b"X-Trickle: 1\r\n")
    # Peeking drains nothing: a non-reading client still holds what the server sent.
    held = sum(1 for sock in socks if still_open(sock))
    for sock in socks:
        sock.close()
    return held


async def abandon_seeded(host: str, port: int, clients: int, seconds: float) -> int:
    async def one(i: int) -> None:
        with contextlib.suppress(OSError):
            _reader, writer = await asyncio.open_connection(host, port)
            path = f"/stream/interactions?seed={1 + i % 3}&count=1000000"
            writer.write(f"GET {path} HTTP/1.1\r\nHost: b\r\n\r\n".encode())
            await asyncio.sleep(0.1)
            writer.transport.abort()

    end = time.monotonic() + seconds
    sent = 0
    while time.monotonic() < end and sent < clients:
        await asyncio.gather(*(one(sent + i) for i in range(30)))
        sent += 30
    return 0


async def measure(name: str, clients: int, base: str, pid: int, session: aiohttp.ClientSession,
                  load: Callable[[], Awaitable[int]]) -> Row:
    before = pss_kib(pid)
    task = asyncio.ensure_future(load())
    await asyncio.sleep(1.0)
    samples, failures = await health_latency(session, base, HOLD_S - 2)
    after = pss_kib(pid)
    held = await task
    samples = samples or [float("nan")]
    p95 = statistics.quantiles(samples, n=20)[-1] if len(samples) >= 2 else samples[0]
    await asyncio.sleep(1.0)  # let the server let go before the next load
    return Row(name, clients, held, (after - before) / max(clients, 1), statistics.median(samples), p95, failures)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--clients", type=int, default=200)
    args = parser.parse_args()
    base = args.url.rstrip("/")
    host, port_text = base.removeprefix("http://").split(":")
    port, n = int(port_text), args.clients

    def get(path: str) -> bytes:
        return f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()

    loads: list[tuple[str, int, Callable[[], Awaitable[int]]]] = [
        ("no load", 0, lambda: asyncio.sleep(HOLD_S, result=0)),
        ("idle connections", n, lambda: hold_sockets(host, port, n, None, False, False, HOLD_S)),
        ("slowloris", n, lambda: hold_sockets(host, port, n, b"GET /health HTTP/1.1\r\n", True, False, HOLD_S)),
        ("live, not reading", n, lambda: hold_sockets(
            host, port, n, get("/stream/interactions?rate=50000&duration=60"), False, True, HOLD_S)),
        ("seeded, not reading", min(n, 8), lambda: hold_sockets(
            host, port, min(n, 8), get("/stream/interactions?seed=7&count=5000000"), False, True, HOLD_S)),
        ("users x5, not reading", 5, lambda: hold_sockets(
            host, port, 5, get("/stream/users?rate=5000&duration=60"), False, False, HOLD_S)),
        ("300 abandoned seeded", 300, lambda: abandon_seeded(host, port, 300, HOLD_S)),
    ]
    rows = []
    async with aiohttp.ClientSession() as session:
        for name, clients, load in loads:
            rows.append(await measure(name, clients, base, args.server_pid, session, load))
            print(f"  {name}: done", flush=True)
    print(f"\n{'load':<22} {'clients':>7} {'held':>5} {'KiB/client':>10} {'/health p50 ms':>14} "
          f"{'p95 ms':>7} {'failed':>6}")
    for r in rows:
        print(f"{r.load:<22} {r.clients:>7} {r.held:>5} {r.kib_per_client:>10.0f} {r.health_p50_ms:>14.1f} "
              f"{r.health_p95_ms:>7.1f} {r.health_failures:>6}")


if __name__ == "__main__":
    asyncio.run(main())
