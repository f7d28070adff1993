"""Memory over a long run with clients coming and going: PSS of all server processes, sampled per round.

    python bench/soak.py http://127.0.0.1:8000 --server-pid PID [--minutes 5]

Each round opens streams of mixed kinds (complete short streams, long streams the client abandons
midway, users streams, seeded replays, SSE) and then samples the memory of the server and its
children. A leak shows as a PSS that keeps climbing from round to round.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time

import aiohttp
from http_bench import MIB, ServerProcesses


def footprint(server: ServerProcesses) -> tuple[float, float]:
    """(RSS, PSS) in MiB summed over the server process and its children."""
    snapshot = server.snapshot()
    if snapshot["processes"] == 0:
        raise SystemExit(f"soak: no process {server.root_pids[0]}: is the server running?")
    if snapshot["pss_bytes"] is None:
        raise SystemExit("soak: cannot read the server's PSS (/proc/PID/smaps_rollup): run as the server's user")
    return snapshot["rss_bytes"] / MIB, snapshot["pss_bytes"] / MIB


async def stream(session: aiohttp.ClientSession, url: str, abandon_after_bytes: int | None) -> int:
    received = 0
    async with session.get(url) as response:
        async for chunk in response.content.iter_any():
            received += len(chunk)
            if abandon_after_bytes is not None and received >= abandon_after_bytes:
                break  # leaving the context closes the connection mid-stream
    return received


async def one_round(base: str, clients: int, rng: random.Random) -> int:
    kinds = [
        "/stream/interactions?rate=50000&count=20000",
        "/stream/interactions?rate=20000&duration=30",  # abandoned midway
        "/stream/users?rate=2000&count=500",
        f"/stream/interactions?seed={rng.choice((7, 42))}&offset={rng.randrange(10**6)}&count=20000",
        "/stream/interactions?rate=5000&count=2000&format=sse",
    ]
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        jobs = []
        for i in range(clients):
            path = kinds[i % len(kinds)]
            abandon = 2_000_000 if "duration=30" in path else None
            jobs.append(stream(session, base + path, abandon))
        return sum(await asyncio.gather(*jobs))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=20)
    args = parser.parse_args()
    rng = random.Random(1)
    server = ServerProcesses([args.server_pid])
    start = time.monotonic()
    rss0, pss0 = footprint(server)
    print(f"{'round':>5}  {'elapsed s':>9}  {'MB received':>11}  {'RSS MiB':>8}  {'PSS MiB':>8}")
    print(f"{0:>5}  {0:>9.0f}  {0:>11}  {rss0:>8.1f}  {pss0:>8.1f}")
    round_no = 0
    while time.monotonic() - start < args.minutes * 60:
        round_no += 1
        received = await one_round(args.url.rstrip("/"), args.clients, rng)
        rss, pss = footprint(server)
        print(f"{round_no:>5}  {time.monotonic() - start:>9.0f}  {received / 1e6:>11.1f}  {rss:>8.1f}  {pss:>8.1f}",
              flush=True)
    rss, pss = footprint(server)
    print(f"\nPSS {pss0:.1f} -> {pss:.1f} MiB over {round_no} rounds ({pss - pss0:+.1f} MiB)")


if __name__ == "__main__":
    asyncio.run(main())
