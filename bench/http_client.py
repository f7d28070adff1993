r"""A deliberately cheap HTTP/1.1 client that counts the NDJSON lines of one streamed response.

`http_bench.py` runs up to 32 of these against a server that shares this machine's cores, so every
microsecond the client spends is taken from the server being measured. The client therefore speaks
HTTP/1.1 itself over an `asyncio.BufferedProtocol` (uvloop when installed): it receives into one
preallocated buffer, walks the chunked framing with integer offsets and counts b"\n" inside each chunk's
payload without copying it. It never decodes JSON: each line is one JSON object ending in b"\n".

Measured on the 2-core development machine against an unpaced local sender (~450-byte lines), the
user-space CPU each way of counting costs per GB received; the kernel's receive path adds about
0.5 s/GB whatever the client does:

    BufferedProtocol + chunk walk + numpy count          ~0.3 s/GB   (this module)
    BufferedProtocol + chunk walk + bytes.count          ~0.9 s/GB
    Protocol (a new bytes per read) + chunk walk         ~0.95 s/GB
    asyncio streams, reader.read() + bytes.count         ~1.2 s/GB   (and miscounts chunk-size lines)
    Protocol + count(b"}\n") on the raw bytes            ~1.2 s/GB   (two-byte needle; lines split by
                                                                     chunk framing are missed)
    aiohttp resp.content.iter_any() + numpy count        ~0.6 s/GB   (`--client aiohttp`)
    aiohttp resp.content.iter_any() + bytes.count        ~1.1 s/GB

End to end, one client process counted 3.2 million events/s (1.4 GB/s) from one stream using 61 % of a
core while the sender used the other core; through aiohttp, 1.1 million events/s at 72 %.

`bytes.count(b"\n")` runs at only ~1.2 GB/s in CPython 3.11 (a byte-at-a-time loop), while
`np.count_nonzero(view == 10)` runs at ~8-10 GB/s, so large slices are counted with numpy; below
`_NUMPY_MIN_BYTES` numpy's fixed ~4 us per call loses and `bytearray.count` is used instead.

Timestamps come from `time.perf_counter()`, which on Linux is CLOCK_MONOTONIC and system-wide, so the
results of client processes started by `--client-procs` can be put on one time line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import time
from array import array
from dataclasses import dataclass, field
from typing import Any, Final, cast
from urllib.parse import urlsplit

import numpy as np

# One read fills at most this much; 256 KiB matches what uvloop and asyncio read per call by default, and
# bigger buffers saved under 5 % CPU in the measurements above while costing memory per client.
_READ_BUFFER_BYTES: Final = 256 * 1024
# Below this many bytes, `bytearray.count` (no call overhead) beats numpy (about 4 us per call).
_NUMPY_MIN_BYTES: Final = 8192
_NEWLINE: Final = 0x0A
_MAX_HEAD_BYTES: Final = 64 * 1024

# How the body is delimited, from the response headers.
_FRAMING_CHUNKED: Final = "chunked"
_FRAMING_LENGTH: Final = "content-length"
_FRAMING_CLOSE: Final = "until-close"


@dataclass(frozen=True)
class Target:
    """Where to connect, parsed once from the user's URL."""

    scheme: str
    host: str
    port: int
    base_path: str

    @classmethod
    def parse(cls, url: str) -> Target:
        """Split `http[s]://host[:port][/prefix]`; the prefix is prepended to every request path."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http:// or https:// URL, got {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))

    @property
    def host_header(self) -> str:
        """The Host header value: the port is omitted when it is the scheme's default."""
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"

    def url(self, path: str) -> str:
        """Absolute URL of `path` (which starts with '/'), for tools such as wrk."""
        return f"{self.scheme}://{self.host_header}{self.base_path}{path}"


@dataclass
class StreamResult:
    """Raw observations of one streamed response; `summary()` turns them into figures.

    All `t_*` fields are `time.perf_counter()` values (0.0 when the moment never came).
    """

    path: str
    t_request: float = 0.0
    t_connected: float = 0.0
    t_first_byte: float = 0.0
    t_first_line: float = 0.0
    t_last_byte: float = 0.0
    status: int = 0
    lines: int = 0
    body_bytes: int = 0
    framing: str = ""
    # True once the body's end was seen: the zero-size chunk, Content-Length reached, or EOF when unframed.
    complete: bool = False
    # True when the last body byte was b"\n", i.e. no line was cut in half.
    ends_on_newline: bool = False
    timed_out: bool = False
    error: str = ""
    # perf_counter() of every read that returned body bytes; successive differences are the chunk gaps.
    read_times: array[float] = field(default_factory=lambda: array("d"))

    @property
    def ok(self) -> bool:
        """A 200 response whose body ended where its framing said it would, on a whole line."""
        return self.status == 200 and self.complete and self.ends_on_newline and not self.error

    @property
    def end_state(self) -> str:
        """One word for the table: how the stream ended."""
        if self.error and not self.status:
            return "error"
        if self.timed_out:
            return "timeout"
        if self.status != 200:
            return f"http{self.status}"
        if not self.complete:
            return "cut"
        if self.lines and not self.ends_on_newline:
            return "partial"
        return "ok"

    @property
    def elapsed_s(self) -> float:
        """From just before connecting to the last byte received."""
        end = self.t_last_byte or self.t_first_byte or self.t_request
        return max(end - self.t_request, 0.0)

    def gaps_s(self) -> np.ndarray:
        """Time between successive reads that returned body bytes."""
        return np.diff(np.frombuffer(self.read_times, dtype=np.float64))

    def summary(
        self, requested_rate_eps: float | None = None, requested_duration_s: float | None = None
    ) -> dict[str, Any]:
        """JSON-ready figures; error percentages need the requested rate (and duration)."""
        elapsed = self.elapsed_s
        rate_wall = self.lines / elapsed if elapsed > 0 else 0.0
        gaps = self.gaps_s()
        out: dict[str, Any] = {
            "path": self.path,
            "status": self.status,
            "end": self.end_state,
            "error": self.error,
            "framing": self.framing,
            "lines": self.lines,
            "body_bytes": self.body_bytes,
            "bytes_per_line": self.body_bytes / self.lines if self.lines else None,
            "elapsed_s": elapsed,
            "events_per_s_wall": rate_wall,
            "connect_ms": _ms(self.t_connected, self.t_request),
            "ttfb_ms": _ms(self.t_first_byte, self.t_request),
            "first_line_ms": _ms(self.t_first_line, self.t_request),
            "reads": len(self.read_times),
            "gap_p50_ms": float(np.percentile(gaps, 50)) * 1e3 if gaps.size else None,
            "gap_p99_ms": float(np.percentile(gaps, 99)) * 1e3 if gaps.size else None,
            "gap_max_ms": float(gaps.max()) * 1e3 if gaps.size else None,
            "complete": self.complete,
            "ends_on_newline": self.ends_on_newline,
        }
        if requested_rate_eps:
            out["requested_rate_eps"] = requested_rate_eps
            out["error_pct_wall"] = 100.0 * (rate_wall - requested_rate_eps) / requested_rate_eps
        if requested_rate_eps and requested_duration_s:
            rate_lines = self.lines / requested_duration_s
            out["requested_duration_s"] = requested_duration_s
            out["events_per_s_lines_over_duration"] = rate_lines
            out["error_pct_lines"] = 100.0 * (rate_lines - requested_rate_eps) / requested_rate_eps
        return out


def _ms(t: float, t0: float) -> float | None:
    return (t - t0) * 1e3 if t else None


class _LineCountingProtocol(asyncio.BufferedProtocol):
    """Parses one HTTP/1.1 response and counts b"\\n" in its (de-chunked) body, without copying it."""

    def __init__(self, request: bytes, result: StreamResult, done: asyncio.Future[None]) -> None:
        self._request = request
        self._result = result
        self._done = done
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray(_READ_BUFFER_BYTES)
        # A numpy view on the same memory: counting through it copies nothing.
        self._view = np.frombuffer(self._buf, dtype=np.uint8)
        self._head: bytearray | None = bytearray()
        # Chunked-framing state: payload bytes left in the current chunk, CRLF bytes still to skip after it,
        # and a chunk-size line split across two reads.
        self._chunk_left = 0
        self._skip = 0
        self._size_line = b""
        self._length_left = 0

    # asyncio callbacks ------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # create_connection() always hands a stream protocol a full (write-capable) Transport.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        self._result.t_connected = time.perf_counter()
        transport.write(self._request)

    def get_buffer(self, sizehint: int) -> bytearray:
        return self._buf

    def buffer_updated(self, nbytes: int) -> None:
        if self._head is not None:
            self._on_head_bytes(nbytes)
        else:
            self._on_body(self._buf, self._view, 0, nbytes, time.perf_counter())

    def eof_received(self) -> bool | None:
        if self._result.framing == _FRAMING_CLOSE:
            self._result.complete = True
        return None  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None and not self._result.error and not self._result.complete:
            self._result.error = f"{type(exc).__name__}: {exc}"
        if not self._done.done():
            self._done.set_result(None)

    def abort(self) -> None:
        """Drop the connection now (timeout)."""
        if self._transport is not None:
            self._transport.abort()

    # parsing ---------------------------------------------------------------------------------------------

    def _on_head_bytes(self, nbytes: int) -> None:
        now = time.perf_counter()
        result = self._result
        if not result.t_first_byte:
            result.t_first_byte = now
        head = self._head
        assert head is not None
        searched_from = max(len(head) - 3, 0)
        head += memoryview(self._buf)[:nbytes]
        end = head.find(b"\r\n\r\n", searched_from)
        if end < 0:
            if len(head) > _MAX_HEAD_BYTES:
                self._fail("response head larger than 64 KiB")
            return
        self._head = None
        try:
            self._parse_head(bytes(head[:end]))
        except ValueError as exc:
            self._fail(f"bad response head: {exc}")
            return
        if result.framing == _FRAMING_LENGTH and self._length_left == 0:
            self._finish()
            return
        rest = bytes(head[end + 4 :])
        if rest:
            self._on_body(rest, None, 0, len(rest), now)

    def _parse_head(self, head: bytes) -> None:
        status_line, *header_lines = head.split(b"\r\n")
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
            raise ValueError(f"status line {status_line[:80]!r}")
        self._result.status = int(parts[1])
        framing = _FRAMING_CLOSE
        for line in header_lines:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"transfer-encoding" and b"chunked" in value.lower():
                framing = _FRAMING_CHUNKED
            elif name == b"content-length" and framing != _FRAMING_CHUNKED:
                framing = _FRAMING_LENGTH
                self._length_left = int(value.strip())
        self._result.framing = framing

    def _on_body(self, buf: bytes | bytearray, view: np.ndarray | None, pos: int, end: int, now: float) -> None:
        """Account for body bytes buf[pos:end]; `view` is a numpy view of `buf` when it is the read buffer."""
        result = self._result
        body_bytes_before = result.body_bytes
        if self._result.framing == _FRAMING_CHUNKED:
            self._on_chunked(buf, view, pos, end)
        elif self._result.framing == _FRAMING_LENGTH:
            take = min(end - pos, self._length_left)
            self._count(buf, view, pos, pos + take)
            self._length_left -= take
            if self._length_left == 0:
                self._finish()
        else:
            self._count(buf, view, pos, end)
        if result.body_bytes == body_bytes_before:
            return  # framing only (such as the final zero-size chunk): not a read that returned data
        result.read_times.append(now)
        if result.lines and not result.t_first_line:
            result.t_first_line = now
        result.t_last_byte = now

    def _on_chunked(self, buf: bytes | bytearray, view: np.ndarray | None, pos: int, end: int) -> None:
        # Costs a few Python operations per chunk, not per line: servers write many lines per chunk.
        while pos < end:
            if self._chunk_left:
                take = min(self._chunk_left, end - pos)
                self._count(buf, view, pos, pos + take)
                pos += take
                self._chunk_left -= take
                if not self._chunk_left:
                    self._skip = 2  # the CRLF that closes every chunk's payload
            elif self._skip:
                take = min(self._skip, end - pos)
                pos += take
                self._skip -= take
            else:
                newline = buf.find(b"\n", pos, end)
                if newline < 0:
                    self._size_line += bytes(buf[pos:end])
                    if len(self._size_line) > 1024:
                        self._fail("chunk-size line longer than 1 KiB")
                    return
                line = self._size_line + bytes(buf[pos:newline])
                self._size_line = b""
                pos = newline + 1
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    self._fail(f"bad chunk-size line {line[:40]!r}")
                    return
                if size == 0:
                    # Trailers may follow; nothing in them matters here, so stop reading.
                    self._finish()
                    return
                self._chunk_left = size

    def _count(self, buf: bytes | bytearray, view: np.ndarray | None, start: int, end: int) -> None:
        if end <= start:
            return
        result = self._result
        if view is not None and end - start >= _NUMPY_MIN_BYTES:
            result.lines += int(np.count_nonzero(view[start:end] == _NEWLINE))
        else:
            result.lines += buf.count(b"\n", start, end)
        result.body_bytes += end - start
        result.ends_on_newline = buf[end - 1] == _NEWLINE

    def _finish(self) -> None:
        self._result.complete = True
        if self._transport is not None:
            self._transport.close()
        if not self._done.done():
            self._done.set_result(None)

    def _fail(self, message: str) -> None:
        self._result.error = message
        self.abort()
        if not self._done.done():
            self._done.set_result(None)


def build_request(target: Target, path: str) -> bytes:
    """A minimal GET; `Connection: close` so the stream's end needs no keep-alive bookkeeping."""
    return (
        f"GET {target.base_path}{path} HTTP/1.1\r\n"
        f"Host: {target.host_header}\r\n"
        "User-Agent: clickstream-http-bench\r\n"
        "Accept: application/x-ndjson, */*\r\n"
        "Connection: close\r\n\r\n"
    ).encode("ascii")


async def fetch_stream(target: Target, path: str, timeout_s: float, start_at: float | None = None) -> StreamResult:
    """GET one stream and count its lines; never raises for network or HTTP trouble (see `error`).

    `start_at` is a `perf_counter()` instant to wait for first, so that many clients (even in several
    processes) start together.
    """
    if start_at is not None:
        await asyncio.sleep(max(start_at - time.perf_counter(), 0.0))
    loop = asyncio.get_running_loop()
    result = StreamResult(path=path)
    done: asyncio.Future[None] = loop.create_future()
    request = build_request(target, path)
    ssl_context = ssl.create_default_context() if target.scheme == "https" else None
    result.t_request = time.perf_counter()
    protocol: _LineCountingProtocol | None = None
    try:
        async with asyncio.timeout(timeout_s):
            _transport, protocol = await loop.create_connection(
                lambda: _LineCountingProtocol(request, result, done), target.host, target.port, ssl=ssl_context
            )
            await done
    except TimeoutError:
        result.timed_out = True
        result.error = result.error or f"no end of stream after {timeout_s:g} s"
        if protocol is not None:
            protocol.abort()
    except OSError as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    return result


async def fetch_stream_aiohttp(
    session: Any, target: Target, path: str, timeout_s: float, start_at: float | None = None
) -> StreamResult:
    """Same measurement through aiohttp's client: about twice the CPU per byte, kept as a cross-check.

    `session` is an `aiohttp.ClientSession`; aiohttp is imported only by callers who choose this client.
    """
    import aiohttp

    if start_at is not None:
        await asyncio.sleep(max(start_at - time.perf_counter(), 0.0))
    result = StreamResult(path=path, framing="aiohttp")
    result.t_request = time.perf_counter()
    last = b""
    try:
        async with asyncio.timeout(timeout_s), session.get(target.url(path)) as response:
            result.t_first_byte = result.t_connected = time.perf_counter()
            result.status = response.status
            async for data in response.content.iter_any():
                now = time.perf_counter()
                result.read_times.append(now)
                if len(data) >= _NUMPY_MIN_BYTES:
                    result.lines += int(np.count_nonzero(np.frombuffer(data, dtype=np.uint8) == _NEWLINE))
                else:
                    result.lines += data.count(b"\n")
                result.body_bytes += len(data)
                if result.lines and not result.t_first_line:
                    result.t_first_line = now
                result.t_last_byte = now
                last = data
            result.complete = True
    except TimeoutError:
        result.timed_out = True
        result.error = f"no end of stream after {timeout_s:g} s"
    except (aiohttp.ClientError, OSError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    result.ends_on_newline = last.endswith(b"\n")
    return result


async def fetch_many(
    target: Target,
    paths: list[str],
    timeout_s: float,
    client: str = "raw",
    start_delay_s: float = 0.0,
    start_at: float | None = None,
) -> list[StreamResult]:
    """Run all `paths` concurrently, starting together at `start_at` (or `start_delay_s` from now)."""
    if start_at is None:
        start_at = time.perf_counter() + start_delay_s
    if client == "raw":
        return list(await asyncio.gather(*(fetch_stream(target, p, timeout_s, start_at) for p in paths)))
    import aiohttp

    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as session:
        return list(
            await asyncio.gather(*(fetch_stream_aiohttp(session, target, p, timeout_s, start_at) for p in paths))
        )


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed: its transports cost less per read than asyncio's selector loop."""
    with contextlib.suppress(ImportError):
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def loop_name() -> str:
    """Name of the loop `new_event_loop()` picks, for the report."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def run_clients_in_process(
    url: str, paths: list[str], timeout_s: float, client: str, start_at: float
) -> tuple[list[StreamResult], float]:
    """Entry point of a `--client-procs` child: run `paths` concurrently, return results and CPU seconds.

    `start_at` is a `perf_counter()` instant shared by all children (CLOCK_MONOTONIC is system-wide).
    """
    target = Target.parse(url)
    loop = new_event_loop()
    try:
        cpu0 = time.process_time()
        results = loop.run_until_complete(fetch_many(target, paths, timeout_s, client, start_at=start_at))
        return results, time.process_time() - cpu0
    finally:
        loop.close()


def warm_up(seconds: float) -> int:
    """Occupy one pool worker briefly, so that warming a pool with N of these starts N processes."""
    time.sleep(seconds)
    return os.getpid()
