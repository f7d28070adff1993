"""Getting one offset range's events into Arrow: fetch them (HTTP) or render them (in process).

Both ways give the same values for the same (stream, positions), so a range read over HTTP and one
generated inside an executor give identical rows; that, plus offsets that name positions, is what makes
a replayed micro-batch identical. Neither parses JSON any more: the server answers `format=arrow` with an
Arrow IPC stream, and executors build Arrow columns straight from the generator's arrays
(`workers/arrow.py`). Parsing NDJSON with pyarrow.json (about 5.5 µs a row, most of a task's time) is
left only as the fallback for a server that does not offer Arrow. Runs inside Spark's Python workers;
imports pyarrow, not pyspark.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from typing import Final
from urllib.parse import urlencode, urlsplit

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as pa_ipc
import pyarrow.json as pa_json

from .offsets import OffsetRange, SparkStream, sub_ranges

STREAM_PATH: Final[str] = "/stream/interactions"
# A failed request is simply repeated: the server returns the same bytes for the same range.
HTTP_ATTEMPTS: Final[int] = 4
RETRY_BACKOFF_S: Final[float] = 0.5
# pyarrow's JSON reader is fastest with ~1 MiB blocks here (16 MiB blocks were 2x slower: cache misses).
JSON_BLOCK_BYTES: Final[int] = 1 << 20
# Rows per Arrow batch handed to Spark: slices (zero-copy) of 8,192 rows were ingested by Spark about 8 %
# faster than whole 50,000-row requests in a test here, with the JVM's per-batch buffers kept small.
SPARK_BATCH_ROWS: Final[int] = 8192


class RangeReadError(RuntimeError):
    """A range came back incomplete or wrong (the task fails rather than let a gap through)."""


class _ServerError(Exception):
    """A 5xx answer: retried like a dropped connection."""


ARROW: Final[str] = "arrow"
NDJSON: Final[str] = "ndjson"
ACCEPT: Final[dict[str, str]] = {ARROW: "application/vnd.apache.arrow.stream", NDJSON: "application/x-ndjson"}


def request_target(base_path: str, stream: SparkStream, first_seq: int, count: int,
                   fmt: str = ARROW) -> str:
    """Path and query of `GET /stream/interactions` for events first_seq .. first_seq + count - 1."""
    query = urlencode(
        {
            "seed": stream.seed,
            "shard": stream.shard,
            "offset": first_seq,
            "count": count,
            "start": stream.start_ms,
            # Always sent: a server's own FUNNEL setting would otherwise decide the stream.
            "funnel": stream.funnel,
            "format": fmt,
        }
    )
    return f"{base_path}{STREAM_PATH}?{query}"


class HttpRangeClient:
    """One keep-alive connection to the server, reused for every request of a task."""

    def __init__(self, url: str, timeout_s: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._base_path = parts.path.rstrip("/")
        self._timeout_s = timeout_s
        self._conn: http.client.HTTPConnection | None = None
        # Arrow until the server says it cannot (an older server, or one without pyarrow): then NDJSON.
        self.format = ARROW

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self._timeout_s)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def get(self, stream: SparkStream, first_seq: int, count: int) -> bytes:
        """The body for the range in `self.format`; retried on connection errors (the answer is deterministic).

        A 400 that names `format` while asking for Arrow switches this client to NDJSON and asks again.
        """
        for attempt in range(1, HTTP_ATTEMPTS + 1):
            target = request_target(self._base_path, stream, first_seq, count, self.format)
            try:
                conn = self._connection()
                conn.request("GET", target, headers={"Accept": ACCEPT[self.format]})
                response = conn.getresponse()
                # read() also undoes the chunked transfer encoding the server streams with.
                body = response.read()
                if response.status >= 500:  # overloaded or restarting: worth another try
                    raise _ServerError(f"{response.status} {response.reason}: {body[:300]!r}")
                if response.status == 400 and self.format == ARROW and _names_format(body):
                    self.format = NDJSON
                    return self.get(stream, first_seq, count)
                if response.status != 200:  # a 4xx will not change on a retry
                    raise RangeReadError(f"GET {target} answered {response.status} {response.reason}: {body[:300]!r}")
                return body
            except (OSError, http.client.HTTPException, _ServerError) as e:
                self.close()
                if attempt == HTTP_ATTEMPTS:
                    raise RangeReadError(f"GET {target} failed {HTTP_ATTEMPTS} times: {e!r}") from e
                # The first retry is immediate: the usual cause is a keep-alive connection the server closed.
                time.sleep(RETRY_BACKOFF_S * (attempt - 1))
        raise AssertionError("unreachable")

    def get_table(self, stream: SparkStream, first_seq: int, count: int, schema: pa.Schema) -> pa.Table:
        """The range as a table of exactly `schema`, whichever format the server answered in."""
        body = self.get(stream, first_seq, count)
        if self.format == NDJSON:
            return parse_ndjson(body, schema)
        return conform(pa_ipc.open_stream(pa.py_buffer(body)).read_all(), schema)


def _names_format(body: bytes) -> bool:
    """Whether a 400's JSON body is the server refusing the `format` parameter."""
    try:
        return bool(json.loads(body).get("parameter") == "format")
    except (ValueError, AttributeError):
        return False


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` with exactly `schema`'s fields, order, types and nullability: Spark rejects any difference."""
    if table.schema.equals(schema):
        return table
    # Only when the caller asked for a subset or different order of the fields.
    return table.select(schema.names).cast(schema)


def render_range(stream: SparkStream, first_seq: int, count: int, max_users: int, max_products: int,
                 schema: pa.Schema, store_countries: tuple[str, ...] = ()) -> pa.Table:
    """The range's events generated in this process, as a table of `schema` (no JSON on the way).

    `render_arrow_seeded` keeps one generator per (stream, store) for the life of the process:
    building the catalog takes seconds, and Spark reuses Python workers across tasks, so only a worker's
    first task pays it.
    """
    # Imported here so the driver (which only plans offsets) never builds or even imports the generator.
    from clickstream.workers.arrow import render_arrow_seeded

    batch = render_arrow_seeded(
        seed=stream.seed,
        shard=stream.shard,
        first_seq=first_seq,
        count=count,
        start_ms=stream.start_ms,
        max_users=max_users,
        max_products=max_products,
        funnel=stream.funnel,
        store_countries=store_countries,
    )
    return conform(pa.Table.from_batches([batch]), schema)


def parse_ndjson(data: bytes, schema: pa.Schema) -> pa.Table:
    """NDJSON bytes as a table of exactly `schema` (field order, types and nullability).

    Parsing straight into the target types (rather than inferring and casting) is both faster and
    what Spark needs: it rejects batches whose Arrow schema differs in any way from its own.
    """
    table = pa_json.read_json(
        pa.py_buffer(data),
        # One thread: Spark already runs one task per core; Arrow's pool on top only adds contention.
        read_options=pa_json.ReadOptions(use_threads=False, block_size=JSON_BLOCK_BYTES),
        parse_options=pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
    )
    return conform(table, schema)


def check_positions(table: pa.Table, first_seq: int, count: int, source: str) -> None:
    """Fail loudly unless the table holds exactly positions first_seq .. first_seq + count - 1."""
    if table.num_rows != count:
        raise RangeReadError(f"{source}: expected {count} events from position {first_seq}, got {table.num_rows}")
    if count == 0 or "seq" not in table.schema.names:
        return
    seq = table.column("seq")
    first, last = seq[0].as_py(), seq[-1].as_py()
    # First, last and strictly increasing together mean no gap and no repeat, at the cost of one pass.
    increasing = count == 1 or pc.all(pc.greater(seq.slice(1), seq.slice(0, count - 1))).as_py()
    if first != first_seq or last != first_seq + count - 1 or not increasing:
        raise RangeReadError(
            f"{source}: expected positions {first_seq}..{first_seq + count - 1}, got {first}..{last}"
            + ("" if increasing else " out of order")
        )


def read_range(
    part: OffsetRange,
    schema: pa.Schema,
    *,
    url: str | None,
    rows_per_request: int,
    max_users: int,
    max_products: int,
    store_countries: tuple[str, ...] = (),
    timeout_s: float,
) -> Iterator[pa.RecordBatch]:
    """Arrow record batches holding the range's events, in position order, one piece at a time.

    Pieces of `rows_per_request` positions keep an executor's memory bounded however large a
    micro-batch is, and let Spark consume one piece while the next is fetched.
    """
    client = HttpRangeClient(url, timeout_s) if url else None
    try:
        for first_seq, count in sub_ranges(part.first_seq, part.count, rows_per_request):
            if client is not None:
                table = client.get_table(part.stream, first_seq, count, schema)
                source = f"{url}{STREAM_PATH}"
            else:
                table = render_range(part.stream, first_seq, count, max_users, max_products, schema,
                                     store_countries)
                source = "render_arrow"
            check_positions(table, first_seq, count, source)
            yield from table.to_batches(max_chunksize=SPARK_BATCH_ROWS)
    finally:
        if client is not None:
            client.close()
