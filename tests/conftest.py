"""Real servers for the tests: `clickstream serve` as a subprocess on a free loopback port.

Like uvicorn's and gunicorn's suites, the tests talk to the real thing over real sockets: real worker
processes, real shared memory, real HTTP clients. Nothing is mocked.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

LISTENING = re.compile(r"listening on (http://\S+)")
SOCKET_FEED = re.compile(r"socket feed on \S+:(\d+)")
BOOT_TIMEOUT_S = 90
SHM = Path("/dev/shm")

# A small catalog boots fast; tests that need the default one say so.
SMALL = {"MAX_USERS": "20000", "MAX_PRODUCTS": "5000"}


class ServerProcess:
    """A running `clickstream serve`, its output captured, stopped and checked by `stop()`."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.args = args
        full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        full_env.pop("PORT", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "clickstream.cli", "serve", "--host", "127.0.0.1", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=full_env,
            text=True,
        )
        self.output: list[str] = []
        self.url = ""  # set from the "listening on" line
        self.socket_port: int | None = None
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            if match := SOCKET_FEED.search(line):
                self.socket_port = int(match.group(1))
            if match := LISTENING.search(line):
                self.url = match.group(1)
                self._ready.set()
        self._ready.set()

    def wait_ready(self, timeout: float = BOOT_TIMEOUT_S) -> ServerProcess:
        if not self._ready.wait(timeout) or not self.url:
            self.kill()
            raise RuntimeError("server did not start:\n" + self.log())
        return self

    def log(self) -> str:
        return "".join(self.output)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def children(self) -> list[psutil.Process]:
        try:
            return list(psutil.Process(self.pid).children(recursive=True))
        except psutil.NoSuchProcess:
            return []

    def json(self, path: str) -> Any:
        """GET a JSON document (error statuses too: /health answers 503 with a body)."""
        try:
            with urllib.request.urlopen(f"{self.url}{path}", timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            return json.loads(error.read())

    def segments(self) -> list[str]:
        return sorted(p.name for p in SHM.glob(f"clickstream-{self.pid}-*"))

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)

    def wait(self, timeout: float = 30) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def stop(self) -> int:
        """SIGTERM and wait: returns the exit code."""
        children = self.children()
        self.signal(signal.SIGTERM)
        code = self.wait(45)
        psutil.wait_procs(children, timeout=10)
        return code

    def kill(self) -> None:
        for child in self.children():
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        self.proc.wait(10)


@contextlib.contextmanager
def running_server(*args: str, env: dict[str, str] | None = None) -> Iterator[ServerProcess]:
    """A server for one test; on the way out it must stop cleanly, leaving no process and no segment."""
    server = ServerProcess(list(args), {**SMALL, **(env or {})}).wait_ready()
    try:
        yield server
    finally:
        if server.proc.poll() is None:
            children = server.children()
            code = server.stop()
            assert code == 0, server.log()
            assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        assert server.segments() == [], server.log()


@pytest.fixture(scope="session")
def server() -> Iterator[ServerProcess]:
    """One shared server with two workers and the default catalog, for tests that only read."""
    with running_server("--workers", "2", env={"MAX_USERS": "100000", "MAX_PRODUCTS": "50000"}) as srv:
        yield srv


@pytest.fixture
def fresh_server() -> Iterator[Any]:
    """Factory: `fresh_server(*args, env=...)` starts a server this test owns (stopped and checked after)."""
    stack = contextlib.ExitStack()

    def start(*args: str, env: dict[str, str] | None = None) -> ServerProcess:
        return stack.enter_context(running_server(*args, env=env))

    with stack:
        yield start


def wait_for(predicate: Any, timeout: float = 30, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def assert_whole_lines_and_nothing_left(server: ServerProcess, body: bytes, children: list[psutil.Process]) -> None:
    """After a stop: the body ended on a whole JSON line, and no child process or segment is left."""
    assert body.endswith(b"\n")
    for line in body.splitlines():
        json.loads(line)
    psutil.wait_procs(children, timeout=10)
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert server.segments() == []
