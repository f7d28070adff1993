"""Processes and lifecycle: signals, worker crashes, crash loops, a killed main process, the socket feed.

Each test starts its own server as a subprocess and checks what is left afterwards: exit codes, child
processes, /dev/shm segments (gunicorn keeps tests like these).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from argparse import Namespace
from urllib.parse import urlsplit

import psutil

from clickstream.server.config import config_from

from .conftest import SHM, ServerProcess, assert_whole_lines_and_nothing_left, wait_for


def open_stream(server: ServerProcess, query: str) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    url = urlsplit(server.url)
    connection = http.client.HTTPConnection(url.netloc, timeout=60)
    connection.request("GET", f"/stream/interactions?{query}")
    return connection, connection.getresponse()


def worker_pids(server: ServerProcess) -> list[int]:
    return [w["pid"] for w in server.json("/metrics")["workers"]]


def test_sigterm_ends_open_streams_on_a_whole_line_and_cleans_up(fresh_server) -> None:  # type: ignore[no-untyped-def]
    server = fresh_server("--workers", "2")
    connection, response = open_stream(server, "rate=5000&duration=60")
    first = response.readline()
    children = server.children()
    assert len(children) >= 2 and server.segments()
    server.signal(signal.SIGTERM)
    body = first + response.read()  # the chunked body must be terminated properly: read() raises on a torn one
    connection.close()
    assert server.wait(30) == 0, server.log()
    assert_whole_lines_and_nothing_left(server, body, children)


def test_a_second_signal_skips_the_grace_period(fresh_server) -> None:  # type: ignore[no-untyped-def]
    server = fresh_server("--workers", "1")
    connection, response = open_stream(server, "rate=10&duration=60")
    response.readline()
    server.signal(signal.SIGINT)
    server.signal(signal.SIGINT)
    assert server.wait(15) == 0
    connection.close()
    assert server.segments() == []


def test_a_dead_worker_is_restarted_and_streams_keep_flowing(fresh_server) -> None:  # type: ignore[no-untyped-def]
    server = fresh_server("--workers", "2")
    connection, response = open_stream(server, "rate=2000&duration=30")
    response.readline()
    victim = worker_pids(server)[0]
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: server.json("/metrics")["workers"][0]["restarts"] == 1)
    wait_for(lambda: server.json("/health")["status"] == "healthy")
    assert worker_pids(server)[0] != victim
    received = 0
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        json.loads(response.readline())
        received += 1
    assert received > 1000  # the stream went on through the crash
    connection.close()
    assert not psutil.pid_exists(victim) or psutil.Process(victim).status() == psutil.STATUS_ZOMBIE


def test_a_crash_loop_halts_the_server_instead_of_spinning(fresh_server) -> None:  # type: ignore[no-untyped-def]
    server = fresh_server("--workers", "1")
    killed: set[int] = set()
    deadline = time.monotonic() + 60
    while server.proc.poll() is None and time.monotonic() < deadline:
        try:
            pids = worker_pids(server)
        except OSError:
            break  # the server is going down
        for pid in pids:
            if pid and pid not in killed:
                killed.add(pid)
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    assert server.wait(30) == 4, server.log()
    assert "halting instead of restarting in a loop" in server.log()
    assert server.segments() == []
    assert len(killed) == 6  # five restarts were allowed, the sixth death halted it


def test_children_and_segments_go_when_the_main_process_is_killed() -> None:
    server = ServerProcess(["--workers", "2"], {"MAX_USERS": "20000", "MAX_PRODUCTS": "5000"}).wait_ready()
    children = server.children()
    names = server.segments()
    assert names
    server.signal(signal.SIGKILL)
    server.wait(10)
    _gone, alive = psutil.wait_procs(children, timeout=15)
    assert not alive
    # multiprocessing's resource tracker unlinks what the dead owner registered
    wait_for(lambda: not any((SHM / name).exists() for name in names), timeout=15)


def test_the_socket_feed_writes_ndjson_lines(fresh_server) -> None:  # type: ignore[no-untyped-def]
    server = fresh_server("--workers", "1", "--socket-port", "0", "--socket-rate", "2000")
    assert server.socket_port
    with socket.create_connection(("127.0.0.1", server.socket_port), timeout=10) as client:
        data = b""
        while data.count(b"\n") < 500:
            data += client.recv(65536)
    lines = data.split(b"\n")[:500]
    assert len({json.loads(line)["interaction_id"] for line in lines}) == 500


def test_configuration_comes_from_flags_then_environment() -> None:
    args = Namespace(host=None, port=None, workers=None, seed=None, max_users=None, max_products=None, rate=None,
                     max_rate=None, socket_port=None, socket_rate=None, log_level=None)
    env = {"PORT": "5555", "WEB_CONCURRENCY": "3", "SEED": "0", "MAX_USERS": "1234", "GENERATION_RATE": "250"}
    config = config_from(args, env)
    assert (config.port, config.workers, config.model.seed, config.model.max_users) == (5555, 3, 0, 1234)
    assert config.default_rate_eps == 250 and config.host == "0.0.0.0"
    args.port, args.workers = 7000, 1
    config = config_from(args, {**env, "WORKERS": "2"})
    assert (config.port, config.workers) == (7000, 1)


def test_bad_configuration_is_an_error_message_not_a_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "clickstream.cli", "serve", "--port", "0", "--max-users", "0"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "max_users must be in 1..10000000" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unknown_funnel_is_a_one_line_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "clickstream.cli", "serve", "--port", "0"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "FUNNEL": "shop"},
    )
    assert result.returncode == 2
    message = "clickstream: environment variable FUNNEL must be one of mix, retail, got 'shop'"
    assert result.stderr.strip().splitlines() == [message]


def test_a_hung_worker_makes_health_503_then_is_replaced(fresh_server) -> None:  # type: ignore[no-untyped-def]
    server = fresh_server("--workers", "2")
    victim = worker_pids(server)[1]
    os.kill(victim, signal.SIGSTOP)  # alive but no longer filling its ring
    try:
        unhealthy = wait_for(lambda: (h := server.json("/health"))["status"] == "unhealthy" and h, timeout=15)
        assert "worker 1" in unhealthy["reason"]
        # the watchdog kills a worker that sent no heartbeat for 10 s, and starts a new one
        wait_for(lambda: server.json("/metrics")["workers"][1]["restarts"] == 1, timeout=30)
        wait_for(lambda: server.json("/health")["status"] == "healthy", timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGCONT)
    assert worker_pids(server)[1] != victim
