#!/usr/bin/env python3
"""Benchmark any clickstream-compatible server over HTTP and print plain-text tables.

Usage (server already running; the script only needs its URL)::

    .venv/bin/python bench/http_bench.py http://127.0.0.1:8000
    .venv/bin/python bench/http_bench.py http://127.0.0.1:8000 --server-pid auto --json bench/results.json
    .venv/bin/python bench/http_bench.py http://127.0.0.1:8000 --quick --only single,wrk

What it measures:

single       one stream each at `--rates` (1000, 10000, 50000 events/s) for `--duration` seconds:
             achieved events/s (lines / time from request to last byte, and lines / requested duration),
             error % against the requested rate, time to first byte and to first line, the gap between
             successive reads that returned data (p50, p99, max), and whether the stream ended on a
             whole line.
concurrency  `--clients` (1, 4, 16, 32) simultaneous streams at `--client-rate` (50000) each: aggregate
             events/s, per-client min/max, worst gaps, and the CPU used by client and server, so that a
             saturated client is visible instead of silently lowering the figures.
wrk          requests/s and latency of short streams (`count=100&rate=50000`) with wrk, when installed.
memory       with `--server-pid PID[,PID]` or `--server-pid auto`: RSS and PSS summed over the server
             process(es) and all their children at the start and after each phase, plus the sampled peak.

The client is `http_client.py` (a raw HTTP/1.1 line counter); its docstring records why it is built
that way and what one client process can absorb.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import ipaddress
import json
import multiprocessing
import os
import platform
import re
import resource
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import psutil
from http_client import (
    StreamResult,
    Target,
    fetch_many,
    loop_name,
    new_event_loop,
    run_clients_in_process,
    warm_up,
)

PHASES: Final = ("single", "concurrency", "wrk")
MIB: Final = 1024 * 1024
# A client process above this share of one core is probably limiting what it measures.
CLIENT_SATURATED_PCT: Final = 85.0


# ---------------------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class BenchConfig:
    """Everything the run needs, validated once from the command line."""

    url: str
    stream_path: str
    phases: tuple[str, ...]
    duration_s: float
    rates_eps: tuple[float, ...]
    clients: tuple[int, ...]
    client_rate_eps: float
    client_procs: int
    client: str
    pause_s: float
    wrk_threads: int
    wrk_connections: int
    wrk_duration_s: float
    wrk_count: int
    wrk_rate_eps: float
    server_pids: str | None
    sample_interval_s: float
    json_path: Path | None

    @property
    def stream_timeout_s(self) -> float:
        """How long one stream may take before it is cut and reported as a timeout."""
        return self.duration_s * 2 + 10.0


def _csv_numbers(text: str, kind: Callable[[str], Any]) -> tuple[Any, ...]:
    try:
        values = tuple(kind(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive comma-separated numbers, got {text!r}")
    return values


def _add_stream_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--path", default="/stream/interactions", help="stream endpoint below the URL")
    parser.add_argument(
        "--only", metavar="PHASES", default=",".join(PHASES), help="comma-separated phases to run: " + ", ".join(PHASES)
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 s streams, 3 s of wrk")
    parser.add_argument(
        "--duration", metavar="S", type=float, default=None, help="seconds per stream (default 10, quick 2)"
    )
    parser.add_argument(
        "--rates",
        metavar="LIST",
        type=lambda s: _csv_numbers(s, float),
        default=(1000.0, 10000.0, 50000.0),
        help="single-stream rates, events/s (default 1000,10000,50000)",
    )


def _add_client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--clients",
        metavar="LIST",
        type=lambda s: _csv_numbers(s, int),
        default=(1, 4, 16, 32),
        help="concurrent client counts (default 1,4,16,32)",
    )
    parser.add_argument(
        "--client-rate",
        metavar="EPS",
        type=float,
        default=50000.0,
        help="rate of each concurrent client (default 50000)",
    )
    parser.add_argument(
        "--client-procs",
        metavar="N",
        type=int,
        default=1,
        help="spread concurrent clients over this many processes (default 1)",
    )
    parser.add_argument(
        "--client",
        choices=("raw", "aiohttp"),
        default="raw",
        help="raw (default): cheap built-in HTTP/1.1 line counter; aiohttp: cross-check, ~2x the CPU",
    )
    parser.add_argument(
        "--pause", metavar="S", type=float, default=None, help="seconds to idle between runs (default 1)"
    )


def _add_wrk_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wrk-threads", metavar="N", type=int, default=2, help="wrk -t (default 2)")
    parser.add_argument("--wrk-connections", metavar="N", type=int, default=32, help="wrk -c (default 32)")
    parser.add_argument("--wrk-duration", metavar="S", type=float, default=None, help="seconds (default 10, quick 3)")
    parser.add_argument("--wrk-count", metavar="N", type=int, default=100, help="events per short stream (default 100)")
    parser.add_argument(
        "--wrk-rate", metavar="EPS", type=float, default=50000.0, help="rate of the short streams (default 50000)"
    )


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server-pid",
        metavar="PID|auto",
        default=None,
        help="PID[,PID...] of the server, or 'auto' to find who listens on the URL's port; "
        "enables the memory and server-CPU figures",
    )
    parser.add_argument(
        "--sample-interval",
        metavar="S",
        type=float,
        default=1.0,
        help="seconds between server memory samples (default 1; 0: only before/after phases)",
    )
    parser.add_argument(
        "--json", metavar="PATH", type=Path, default=None, help="also write all results to this JSON file"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Benchmark a clickstream server over HTTP: single-stream accuracy, concurrency, wrk, memory.",
    )
    parser.add_argument("url", help="base URL of the server, e.g. http://127.0.0.1:8000")
    for add_options in (_add_stream_options, _add_client_options, _add_wrk_options, _add_server_options):
        add_options(parser)
    return parser


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[str, ...]:
    """Reject what argparse cannot see (through parser.error, exit 2); the phases to run, in PHASES order."""
    phases = tuple(p.strip() for p in args.only.split(",") if p.strip())
    unknown = sorted(set(phases) - set(PHASES))
    if unknown:
        parser.error(f"--only: unknown phase(s) {', '.join(unknown)}; choose from {', '.join(PHASES)}")
    try:
        Target.parse(args.url)
    except ValueError as exc:
        parser.error(str(exc))
    if args.client_rate <= 0 or args.wrk_rate <= 0 or args.wrk_count <= 0:
        parser.error("--client-rate, --wrk-rate and --wrk-count must be positive")
    if args.client_procs < 1:
        parser.error("--client-procs must be at least 1")
    return tuple(p for p in PHASES if p in phases)


def _unless_set(value: float | None, quick: bool, quick_default: float, default: float) -> float:
    """`value` if the user gave it, else the `--quick` or the normal default."""
    if value is not None:
        return value
    return quick_default if quick else default


def parse_args(argv: Sequence[str] | None = None) -> BenchConfig:
    """Build the `BenchConfig` from `argv`; `--quick` only changes defaults the user did not set."""
    parser = build_parser()
    args = parser.parse_args(argv)
    phases = _check(parser, args)
    return BenchConfig(
        url=args.url.rstrip("/"),
        stream_path="/" + args.path.strip("/"),
        phases=phases,
        duration_s=_unless_set(args.duration, args.quick, 2.0, 10.0),
        rates_eps=args.rates,
        clients=args.clients,
        client_rate_eps=args.client_rate,
        client_procs=args.client_procs,
        client=args.client,
        pause_s=_unless_set(args.pause, args.quick, 0.3, 1.0),
        wrk_threads=args.wrk_threads,
        wrk_connections=args.wrk_connections,
        wrk_duration_s=_unless_set(args.wrk_duration, args.quick, 3.0, 10.0),
        wrk_count=args.wrk_count,
        wrk_rate_eps=args.wrk_rate,
        server_pids=args.server_pid,
        sample_interval_s=args.sample_interval,
        json_path=args.json,
    )


def _num(value: float) -> str:
    """Query-string form of a number: 50000 rather than 50000.0."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def stream_query(config: BenchConfig, **params: float) -> str:
    """Request path with its query string, e.g. /stream/interactions?rate=1000&duration=10."""
    return config.stream_path + "?" + "&".join(f"{k}={_num(v)}" for k, v in params.items())


# ---------------------------------------------------------------------------------------------------------
# Server processes: memory and CPU


class ServerProcesses:
    """The server's root process(es) and, at each look, all their current descendants."""

    def __init__(self, root_pids: Sequence[int]) -> None:
        self.root_pids = tuple(root_pids)

    def processes(self) -> list[Any]:
        """Roots and descendants alive right now; workers come and go, so this is re-read every time."""
        seen: dict[int, Any] = {}
        for pid in self.root_pids:
            try:
                root = psutil.Process(pid)
                seen[pid] = root
                for child in root.children(recursive=True):
                    seen[child.pid] = child
            except psutil.NoSuchProcess:
                continue
        return list(seen.values())

    def snapshot(self) -> dict[str, Any]:
        """Summed RSS, PSS and USS, process count and CPU seconds (PSS/USS are None when unreadable).

        RSS counts shared pages (shared-memory rings, copy-on-write after fork) once per process, so its
        sum overstates; PSS splits each shared page between its users and sums to the real footprint.
        """
        rss = pss = uss = 0
        full = True
        cpu = 0.0
        count = 0
        for proc in self.processes():
            try:
                with proc.oneshot():
                    try:
                        info = proc.memory_full_info()
                        pss += info.pss
                        uss += info.uss
                    except (psutil.AccessDenied, AttributeError):
                        info = proc.memory_info()
                        full = False
                    rss += info.rss
                    times = proc.cpu_times()
                    # children_* holds the CPU of children already reaped: workers that exited mid-run.
                    cpu += times.user + times.system + times.children_user + times.children_system
                    count += 1
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                continue
        return {
            "t": time.perf_counter(),
            "processes": count,
            "rss_bytes": rss,
            "pss_bytes": pss if full else None,
            "uss_bytes": uss if full else None,
            "cpu_s": cpu,
        }

    def describe(self) -> list[str]:
        """One line per process, for the report header."""
        lines = []
        for proc in self.processes():
            try:
                cmd = " ".join(proc.cmdline())[:90] or proc.name()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                cmd = "?"
            lines.append(f"{proc.pid:>7}  {cmd}")
        return lines


def find_server_pids(target: Target) -> list[int]:
    """The process that listens on the target's port, for `--server-pid auto`.

    A clickstream server is one process: it listens, and it supervises its worker processes, which
    `ServerProcesses` counts as its children (server/supervisor.py). The workers never listen.
    """
    if not _is_local(target.host):
        raise SystemExit(f"--server-pid auto: {target.host} is not this machine; pass the server's PID instead")
    try:
        conns = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        raise SystemExit("--server-pid auto: not allowed to list sockets here; pass the PID instead") from None
    listeners = {
        c.pid for c in conns if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == target.port and c.pid
    }
    if not listeners:
        raise SystemExit(f"--server-pid auto: no process found listening on port {target.port}")
    return sorted(listeners)


def _is_local(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except socket.gaierror:
        return False
    local = {"0.0.0.0", "::"}
    local |= {str(a.address).split("%")[0] for nic in psutil.net_if_addrs().values() for a in nic}
    return any(ipaddress.ip_address(a.split("%")[0]).is_loopback or a in local for a in addresses)


class MemorySampler:
    """Samples the server's memory every `interval_s` in a daemon thread, to catch the peak.

    A sample reads /proc/<pid>/smaps_rollup for each server process: about a millisecond for a handful of
    processes, so once a second costs the clients sharing this interpreter nothing measurable.
    """

    def __init__(self, server: ServerProcesses, interval_s: float) -> None:
        self._server = server
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)
        self.samples: list[dict[str, Any]] = []

    def __enter__(self) -> MemorySampler:
        if self._interval_s > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.samples.append(self._server.snapshot())


# ---------------------------------------------------------------------------------------------------------
# Measurements


@dataclass
class Run:
    """Shared state of one benchmark run: configuration, server handle, results and their JSON form."""

    config: BenchConfig
    target: Target
    server: ServerProcesses | None
    loop: asyncio.AbstractEventLoop
    pool: ProcessPoolExecutor | None = None

    def fetch(self, paths: list[str], start_delay_s: float = 0.05) -> tuple[list[StreamResult], float]:
        """Run `paths` concurrently (over `--client-procs` processes); return results and client CPU s."""
        cfg = self.config
        if self.pool is None or len(paths) == 1:
            cpu0 = time.process_time()
            results = self.loop.run_until_complete(
                fetch_many(self.target, paths, cfg.stream_timeout_s, cfg.client, start_delay_s)
            )
            return results, time.process_time() - cpu0
        shares = [paths[i :: cfg.client_procs] for i in range(cfg.client_procs)]
        start_at = time.perf_counter() + 0.3  # time for the (warm) pool to receive the tasks
        futures = [
            self.pool.submit(run_clients_in_process, cfg.url, share, cfg.stream_timeout_s, cfg.client, start_at)
            for share in shares
            if share
        ]
        merged: list[StreamResult] = []
        cpu = 0.0
        for future in futures:
            part, part_cpu = future.result()
            merged += part
            cpu += part_cpu
        return merged, cpu

    def server_snapshot(self) -> dict[str, Any] | None:
        return self.server.snapshot() if self.server is not None else None


def host_busy_s() -> float:
    """CPU seconds all cores have spent busy since boot.

    Shown next to client and server CPU because this machine may be shared: if host minus client minus
    server is large, something else was competing for the cores and the figures are lower bounds.
    """
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def _host_pct(before: float | None, after: float | None, wall_s: float) -> float | None:
    if before is None or after is None or wall_s <= 0:
        return None
    return 100.0 * (after - before) / wall_s


def _cpu_pct(before: dict[str, Any] | None, after: dict[str, Any] | None, wall_s: float) -> float | None:
    if before is None or after is None or wall_s <= 0:
        return None
    return 100.0 * float(after["cpu_s"] - before["cpu_s"]) / wall_s


def measure_single(run: Run) -> list[dict[str, Any]]:
    """One stream at a time at each requested rate."""
    cfg = run.config
    rows = []
    for rate in cfg.rates_eps:
        path = stream_query(cfg, rate=rate, duration=cfg.duration_s)
        before, host_before = run.server_snapshot(), host_busy_s()
        (result,), client_cpu_s = run.fetch([path])
        after, host_after = run.server_snapshot(), host_busy_s()
        row = result.summary(rate, cfg.duration_s)
        row["client_cpu_pct"] = 100.0 * client_cpu_s / result.elapsed_s if result.elapsed_s else None
        row["server_cpu_pct"] = _cpu_pct(before, after, result.elapsed_s)
        row["host_cpu_pct"] = _host_pct(host_before, host_after, result.elapsed_s)
        rows.append(row)
        time.sleep(cfg.pause_s)
    return rows


def measure_concurrency(run: Run) -> list[dict[str, Any]]:
    """N simultaneous streams at `--client-rate` each, for each N of `--clients`."""
    cfg = run.config
    rows = []
    for n in cfg.clients:
        path = stream_query(cfg, rate=cfg.client_rate_eps, duration=cfg.duration_s)
        before, host_before = run.server_snapshot(), host_busy_s()
        results, client_cpu_s = run.fetch([path] * n, start_delay_s=0.05)
        after, host_after = run.server_snapshot(), host_busy_s()
        row = summarize_concurrent(results, n, cfg, client_cpu_s, before, after)
        row["host_cpu_pct"] = _host_pct(host_before, host_after, row["window_s"])
        rows.append(row)
        time.sleep(cfg.pause_s)
    return rows


def summarize_concurrent(
    results: list[StreamResult],
    n: int,
    cfg: BenchConfig,
    client_cpu_s: float,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> dict[str, Any]:
    """Aggregate figures over the window from the first request to the last byte of any client."""
    started = [r.t_request for r in results if r.t_request]
    ended = [r.t_last_byte for r in results if r.t_last_byte]
    window_s = max(ended) - min(started) if started and ended else 0.0
    lines = sum(r.lines for r in results)
    per_client = [r.lines / r.elapsed_s if r.elapsed_s else 0.0 for r in results]
    gaps = [r.gaps_s() for r in results]
    all_gaps = np.concatenate(gaps) if gaps else np.empty(0)
    ttfbs = [r.t_first_byte - r.t_request for r in results if r.t_first_byte]
    requested = n * cfg.client_rate_eps
    aggregate = lines / window_s if window_s else 0.0
    failed = [r for r in results if not r.ok]
    return {
        "clients": n,
        "client_procs": min(cfg.client_procs, n),
        "rate_each_eps": cfg.client_rate_eps,
        "requested_eps": requested,
        "lines": lines,
        "window_s": window_s,
        "aggregate_eps": aggregate,
        "error_pct": 100.0 * (aggregate - requested) / requested,
        "sum_of_client_eps": sum(per_client),
        "client_min_eps": min(per_client),
        "client_max_eps": max(per_client),
        "ttfb_max_ms": max(ttfbs) * 1e3 if ttfbs else None,
        "gap_p50_ms": float(np.percentile(all_gaps, 50)) * 1e3 if all_gaps.size else None,
        "gap_p99_ms": float(np.percentile(all_gaps, 99)) * 1e3 if all_gaps.size else None,
        "gap_p99_worst_client_ms": max((float(np.percentile(g, 99)) * 1e3 for g in gaps if g.size), default=None),
        "gap_max_ms": float(all_gaps.max()) * 1e3 if all_gaps.size else None,
        "failed": len(failed),
        "failures": sorted({f"{r.end_state}: {r.error}" if r.error else r.end_state for r in failed}),
        "client_cpu_pct": 100.0 * client_cpu_s / window_s if window_s else None,
        "server_cpu_pct": _cpu_pct(before, after, window_s),
        **cpu_per_event(lines, client_cpu_s, before, after),
        "per_client": [r.summary(cfg.client_rate_eps, cfg.duration_s) for r in results],
    }


def cpu_per_event(lines: int, client_cpu_s: float, before: dict[str, Any] | None,
                  after: dict[str, Any] | None) -> dict[str, float | None]:
    """CPU microseconds per event of the server tree and of the client, and the aggregate rate those costs
    allow when server and client have every core to themselves (cores / their CPU per event).

    On a shared machine the aggregate rate measures the other load as much as the server; CPU per event
    hardly depends on it, so the projection is the figure to compare between runs.
    """
    if not lines:
        return {"server_us_per_event": None, "client_us_per_event": None, "cpu_bound_eps": None}
    client_us = client_cpu_s / lines * 1e6
    server_us = float(after["cpu_s"] - before["cpu_s"]) / lines * 1e6 if before and after else None
    cores = psutil.cpu_count() or 1
    bound = cores / (server_us + client_us) * 1e6 if server_us is not None else None
    return {"server_us_per_event": server_us, "client_us_per_event": client_us, "cpu_bound_eps": bound}


_TIME_UNITS: Final = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
# wrk prints sizes in binary units (format_binary divides by 1024).
_SIZE_UNITS: Final = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
_TIME: Final = r"([\d.]+)(us|ms|s|m|h)"


def parse_wrk(text: str) -> dict[str, Any]:
    """Pull the figures out of `wrk --latency` output (values in seconds, bytes and counts)."""
    out: dict[str, Any] = {}
    m = re.search(rf"Latency\s+{_TIME}\s+{_TIME}\s+{_TIME}", text)
    if m:
        for i, key in enumerate(("latency_avg_s", "latency_stdev_s", "latency_max_s")):
            out[key] = float(m[2 * i + 1]) * _TIME_UNITS[m[2 * i + 2]]
    for pct, value, unit in re.findall(rf"^\s+(50|75|90|99)%\s+{_TIME}", text, re.M):
        out[f"latency_p{pct}_s"] = float(value) * _TIME_UNITS[unit]
    m = re.search(rf"(\d+) requests in {_TIME}, ([\d.]+)([KMGT]?B) read", text)
    if m:
        out["requests"] = int(m[1])
        out["elapsed_s"] = float(m[2]) * _TIME_UNITS[m[3]]
        out["read_bytes"] = float(m[4]) * _SIZE_UNITS[m[5]]
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["socket_errors"] = (
        dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups()), strict=True))
        if m
        else {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    )
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["non_2xx_3xx"] = int(m[1]) if m else 0
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    out["requests_per_s"] = float(m[1]) if m else None
    m = re.search(r"Transfer/sec:\s+([\d.]+)([KMGT]?B)", text)
    out["transfer_bytes_per_s"] = float(m[1]) * _SIZE_UNITS[m[2]] if m else None
    return out


def measure_wrk(run: Run) -> dict[str, Any]:
    """Short streams under wrk: how many whole requests per second the server completes."""
    cfg = run.config
    path = stream_query(cfg, count=cfg.wrk_count, rate=cfg.wrk_rate_eps)
    url = run.target.url(path)
    wrk = shutil.which("wrk")
    out: dict[str, Any] = {"url": url}
    if wrk is None:
        out["skipped"] = "wrk is not installed (apt-get install wrk, brew install wrk)"
        return out
    # wrk checks status codes but not bodies: first make sure one short stream really carries `count` lines.
    (check,), _cpu = run.fetch([path])
    out["check"] = check.summary()
    if not check.ok or check.lines != cfg.wrk_count:
        out["check_problem"] = (
            f"one request returned {check.lines} lines ({check.end_state} {check.error}), expected {cfg.wrk_count}"
        )
    cmd = [
        wrk,
        f"-t{cfg.wrk_threads}",
        f"-c{cfg.wrk_connections}",
        f"-d{_num(cfg.wrk_duration_s)}s",
        "--latency",
        "--timeout",
        "10s",
        url,
    ]
    out["command"] = " ".join(cmd)
    before, host_before = run.server_snapshot(), host_busy_s()
    usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=cfg.wrk_duration_s + 60, check=False)
    wall_s = time.perf_counter() - t0
    usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    after, host_after = run.server_snapshot(), host_busy_s()
    out["raw_output"] = proc.stdout + proc.stderr
    if proc.returncode != 0:
        out["failed"] = f"wrk exited with {proc.returncode}: {proc.stderr.strip()[:200]}"
        return out
    out.update(parse_wrk(proc.stdout))
    wrk_cpu_s = (usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime)
    out["client_cpu_pct"] = 100.0 * wrk_cpu_s / wall_s
    out["server_cpu_pct"] = _cpu_pct(before, after, wall_s)
    out["host_cpu_pct"] = _host_pct(host_before, host_after, wall_s)
    if out.get("requests_per_s"):
        out["events_per_s"] = out["requests_per_s"] * cfg.wrk_count
    if out.get("requests"):
        out["bytes_per_request"] = out["read_bytes"] / out["requests"]
    return out


# ---------------------------------------------------------------------------------------------------------
# Output


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Plain-text table, first column left-aligned, the others right-aligned."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        first, *rest = cells
        return "  ".join(
            [str(first).ljust(widths[0])] + [str(c).rjust(w) for c, w in zip(rest, widths[1:], strict=True)]
        )

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def _f(value: float | None, spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value / MIB:,.1f}"


# (header, result key, format spec); a spec of "" prints the value as it is.
Column = tuple[str, str, str]
CPU_COLUMNS: Final[tuple[Column, ...]] = (
    ("cli cpu%", "client_cpu_pct", ",.0f"),
    ("srv cpu%", "server_cpu_pct", ",.0f"),
    ("host cpu%", "host_cpu_pct", ",.0f"),
)
CPU_LEGEND: Final = (
    "cpu% = percent of one core: cli = client process(es), srv = server tree (--server-pid), host = all "
    "processes on all cores; host - cli - srv is other load, which makes every figure a lower bound"
)
SINGLE_COLUMNS: Final[tuple[Column, ...]] = (
    ("rate/s", "requested_rate_eps", ",.0f"),
    ("lines", "lines", ",.0f"),
    ("wall s", "elapsed_s", ".2f"),
    ("ev/s", "events_per_s_wall", ",.0f"),
    ("err %", "error_pct_wall", "+.2f"),
    ("lines/dur", "events_per_s_lines_over_duration", ",.0f"),
    ("err %", "error_pct_lines", "+.2f"),
    ("ttfb ms", "ttfb_ms", ".1f"),
    ("1st line ms", "first_line_ms", ".1f"),
    ("gap p50 ms", "gap_p50_ms", ".2f"),
    ("gap p99 ms", "gap_p99_ms", ".2f"),
    ("gap max ms", "gap_max_ms", ".1f"),
    ("reads", "reads", ",.0f"),
    *CPU_COLUMNS,
    ("end", "end", ""),
)
CONCURRENCY_COLUMNS: Final[tuple[Column, ...]] = (
    ("clients", "clients", ",.0f"),
    ("requested/s", "requested_eps", ",.0f"),
    ("lines", "lines", ",.0f"),
    ("window s", "window_s", ".2f"),
    ("aggregate ev/s", "aggregate_eps", ",.0f"),
    ("err %", "error_pct", "+.2f"),
    ("client min", "client_min_eps", ",.0f"),
    ("client max", "client_max_eps", ",.0f"),
    ("ttfb max ms", "ttfb_max_ms", ".1f"),
    ("gap p50 ms", "gap_p50_ms", ".2f"),
    ("gap p99 ms", "gap_p99_ms", ".2f"),
    ("worst p99", "gap_p99_worst_client_ms", ".2f"),
    ("gap max ms", "gap_max_ms", ".1f"),
    ("failed", "failed", ",.0f"),
    *CPU_COLUMNS,
    ("srv us/ev", "server_us_per_event", ".2f"),
    ("cli us/ev", "client_us_per_event", ".2f"),
    ("cpu-bound ev/s", "cpu_bound_eps", ",.0f"),
)


def render_rows(columns: Sequence[Column], rows: Sequence[dict[str, Any]]) -> str:
    """Table of `rows` (result dicts) with one column per (header, key, spec)."""
    cells = [[_f(r.get(key), spec) if spec else str(r.get(key)) for _h, key, spec in columns] for r in rows]
    return table([header for header, _k, _s in columns], cells)


def render_single(rows: list[dict[str, Any]]) -> str:
    notes = [f"  {r['requested_rate_eps']:,.0f}/s: {r['error']}" for r in rows if r["error"]]
    legend = (
        "ev/s = lines / (request to last byte); lines/dur = lines / requested duration; ttfb counts from "
        "before connecting; gap = time between reads that returned data; end: ok = complete and ended on "
        "a whole line, partial = ended mid-line, cut = connection closed before the end of the body"
    )
    return "\n".join([render_rows(SINGLE_COLUMNS, rows), legend, CPU_LEGEND, *notes])


def render_concurrency(rows: list[dict[str, Any]]) -> str:
    notes = [f"  {r['clients']} clients: {'; '.join(r['failures'])}" for r in rows if r["failures"]]
    saturated = [r for r in rows if (r["client_cpu_pct"] or 0) > CLIENT_SATURATED_PCT * r["client_procs"]]
    if saturated:
        notes.append(
            f"  warning: the client process(es) used over {CLIENT_SATURATED_PCT:.0f}% of a core at "
            f"{', '.join(str(r['clients']) for r in saturated)} clients and may have limited the "
            "result; try --client-procs 2"
        )
    legend = (
        "aggregate = all lines / (first request to last byte); client min/max = each client's lines / its "
        "own request-to-last-byte time; worst p99 = the highest of the clients' own gap p99; us/ev = CPU "
        "microseconds per event (srv: server tree, workers included); cpu-bound ev/s = cores / (srv + cli "
        "us/ev): the aggregate those costs allow with no other load (compare this between runs on a shared "
        "machine)"
    )
    return "\n".join([render_rows(CONCURRENCY_COLUMNS, rows), legend, CPU_LEGEND, *notes])


def render_wrk(result: dict[str, Any]) -> str:
    if "skipped" in result:
        return f"skipped: {result['skipped']}"
    lines = [f"command: {result['command']}"]
    if "check_problem" in result:
        lines.append(f"warning: {result['check_problem']}")
    if "failed" in result:
        return "\n".join([*lines, result["failed"]])
    errors = result["socket_errors"]
    rows = [
        ["requests/s", _f(result.get("requests_per_s"), ",.1f")],
        ["events/s (requests/s x count)", _f(result.get("events_per_s"))],
        ["requests", _f(result.get("requests"))],
        [
            "latency avg / stdev / max ms",
            " / ".join(
                _f(_s_to_ms(result.get(k)), ".2f") for k in ("latency_avg_s", "latency_stdev_s", "latency_max_s")
            ),
        ],
        [
            "latency p50 / p75 / p90 / p99 ms",
            " / ".join(_f(_s_to_ms(result.get(f"latency_p{p}_s")), ".2f") for p in (50, 75, 90, 99)),
        ],
        [
            "bytes per response (wrk) / body (check)",
            f"{_f(result.get('bytes_per_request'))} / {_f(result['check']['body_bytes'])}",
        ],
        ["non-2xx/3xx responses", _f(result["non_2xx_3xx"])],
        ["socket errors connect/read/write/timeout", "/".join(str(errors[k]) for k in errors)],
        [
            "cpu% wrk / server / host",
            " / ".join(_f(result.get(k)) for k in ("client_cpu_pct", "server_cpu_pct", "host_cpu_pct")),
        ],
    ]
    return "\n".join([*lines, table(["", "value"], rows)])


def _s_to_ms(value: float | None) -> float | None:
    return None if value is None else value * 1e3


def render_memory(points: list[tuple[str, dict[str, Any]]], samples: list[dict[str, Any]]) -> str:
    rows = [
        [label, _f(s["processes"]), _mib(s["rss_bytes"]), _mib(s["pss_bytes"]), _mib(s["uss_bytes"])]
        for label, s in points
    ]
    if samples:
        rows.append(
            [
                f"peak of {len(samples)} samples",
                _f(max(s["processes"] for s in samples)),
                _mib(max(s["rss_bytes"] for s in samples)),
                _mib(max((s["pss_bytes"] for s in samples if s["pss_bytes"] is not None), default=None)),
                _mib(max((s["uss_bytes"] for s in samples if s["uss_bytes"] is not None), default=None)),
            ]
        )
    legend = (
        "summed over the server process(es) and all children; RSS counts shared pages once per process, "
        "PSS shares them out (the real footprint), USS = private pages only"
    )
    return "\n".join([table(["when", "procs", "RSS MiB", "PSS MiB", "USS MiB"], rows), legend])


_TITLES: Final[dict[str, Callable[[BenchConfig], str]]] = {
    "single": lambda c: f"single stream, {c.duration_s:g} s each",
    "concurrency": lambda c: (
        f"concurrent clients at {c.client_rate_eps:,.0f}/s each, {c.duration_s:g} s "
        f"({c.client_procs} client process{'es' if c.client_procs > 1 else ''})"
    ),
    "wrk": lambda c: (
        f"wrk, short streams (count={c.wrk_count}, rate={_num(c.wrk_rate_eps)}), "
        f"-t{c.wrk_threads} -c{c.wrk_connections} {c.wrk_duration_s:g} s"
    ),
}


def section(title: str, text: str) -> None:
    print(f"\n== {title} ==\n{text}", flush=True)


# ---------------------------------------------------------------------------------------------------------
# Main


def resolve_server(spec: str | None, target: Target) -> ServerProcesses | None:
    """`--server-pid`: None, 'auto' or comma-separated PIDs."""
    if not spec:
        return None
    pids = find_server_pids(target) if spec == "auto" else [int(p) for p in spec.split(",")]
    server = ServerProcesses(pids)
    if not server.processes():
        raise SystemExit(f"--server-pid: no such process {spec}")
    return server


def run_info(cfg: BenchConfig, argv: Sequence[str] | None, server: ServerProcesses | None) -> dict[str, Any]:
    """The "meta" block of the results: what ran where, against what."""
    return {
        "url": cfg.url,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "argv": sys.argv[1:] if argv is None else list(argv),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "client": cfg.client,
        "loop": loop_name(),
        "client_procs": cfg.client_procs,
        "duration_s": cfg.duration_s,
        # Another job on the machine shows up here before it shows up as a mysteriously slow server.
        "loadavg_start": os.getloadavg(),
        "server_pids": list(server.root_pids) if server else None,
    }


def probe(run: Run) -> None:
    """Fail fast with one clear message rather than a table of connection errors."""
    (result,), _cpu = run.fetch([stream_query(run.config, count=10, rate=1000)])
    if result.status != 200 or result.lines == 0:
        raise SystemExit(
            f"probe {run.target.url(result.path)} failed: status {result.status}, {result.lines} lines, "
            f"{result.end_state}{': ' + result.error if result.error else ''}"
        )


def run_phases(run: Run, results: dict[str, Any]) -> None:
    """Each selected phase in turn, printed as it ends; with a server handle, its memory around them."""
    cfg, server = run.config, run.server
    memory_points: list[tuple[str, dict[str, Any]]] = []
    sampler = MemorySampler(server, cfg.sample_interval_s) if server else None
    if server is not None:
        memory_points.append(("start", server.snapshot()))
    with sampler or contextlib.nullcontext():
        for phase, measure, render in (
            ("single", measure_single, render_single),
            ("concurrency", measure_concurrency, render_concurrency),
            ("wrk", measure_wrk, render_wrk),
        ):
            if phase not in cfg.phases:
                continue
            results[phase] = measure(run)
            section(_TITLES[phase](cfg), render(results[phase]))
            if server is not None:
                memory_points.append((f"after {phase}", server.snapshot()))
    if server is not None:
        samples = sampler.samples if sampler else []
        section("server memory", render_memory(memory_points, samples))
        t0 = memory_points[0][1]["t"]
        results["memory"] = {
            "points": [{"when": label, **s, "t": s["t"] - t0} for label, s in memory_points],
            "samples": [{**s, "t": s["t"] - t0} for s in samples],
        }


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    target = Target.parse(cfg.url)
    server = resolve_server(cfg.server_pids, target)
    meta = run_info(cfg, argv, server)
    print(
        f"http_bench: {cfg.url}{cfg.stream_path}  phases={','.join(cfg.phases)}  duration={cfg.duration_s:g}s  "
        f"client={cfg.client}/{meta['loop']} x{cfg.client_procs} proc  cpus={meta['cpus']}  "
        f"load={os.getloadavg()[0]:.2f}"
    )
    if server is not None:
        print("server processes:\n" + "\n".join(server.describe()))

    loop = new_event_loop()
    pool = None
    if "concurrency" in cfg.phases and cfg.client_procs > 1:
        # spawn, not fork: the sampler thread may be running, and a fork copies a thread's locks mid-use.
        pool = ProcessPoolExecutor(cfg.client_procs, mp_context=multiprocessing.get_context("spawn"))
        list(pool.map(warm_up, [0.3] * cfg.client_procs))
    run = Run(cfg, target, server, loop, pool)
    results: dict[str, Any] = {"meta": meta}
    try:
        probe(run)
        run_phases(run, results)
    finally:
        if pool is not None:
            pool.shutdown()
        loop.close()
    if cfg.json_path is not None:
        cfg.json_path.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nwrote {cfg.json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
