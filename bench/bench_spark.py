#!/usr/bin/env python3
"""Rows/s of the clickstream Spark source into Spark's noop sink, beside Spark's own rate source.

Usage (the HTTP mode needs a running server, e.g. `clickstream serve --workers 1 --port 8000`: its seeded
requests are answered by the server's generation thread, so one idle worker leaves Spark the most CPU)::

    .venv/bin/python bench/bench_spark.py                                  # executor mode and rate
    .venv/bin/python bench/bench_spark.py --url http://127.0.0.1:8000      # and the HTTP mode
    .venv/bin/python bench/bench_spark.py --modes executor --batch-rows 1000000 --batches 5

What it measures:

components  one core, no Spark: the pieces a Spark task runs for each 50,000-row request (build the
            Arrow columns in process, or GET an Arrow IPC stream from the server and read it), and the old
            NDJSON path for comparison (render NDJSON, parse it with pyarrow.json: what HTTP mode falls back
            to against a server without Arrow), so the Spark figures below read as "where the time goes".
spark       a streaming query per source into `format("noop")` with `local[N]`: one warm-up micro-batch
            (Python workers start, the executors build the catalog), then `--batches` batches of
            `--batch-rows` rows each from a backlog (startTime in the past). rows/s = rows / summed
            `triggerExecution` time of the measured batches. `rate` is Spark's `rate-micro-batch` source
            with the same rows per batch and partitions: JVM-generated (timestamp, value) rows, the
            ceiling of what Spark's micro-batch machinery does here.

Every figure depends on what else runs on the machine: the load average is printed first.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clickstream.connectors.offsets import SparkStream

COMPONENT_ROWS = 50_000
COMPONENT_SECONDS = 3.0


@dataclass
class Result:
    name: str
    rows: int
    seconds: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def _repeat(work: Callable[[], int], seconds: float) -> tuple[int, float]:
    """Call `work` (returning rows) until `seconds` have passed; (rows, elapsed)."""
    rows, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        rows += work()
    return rows, time.perf_counter() - began


def components(args: argparse.Namespace) -> list[Result]:
    """The per-request pieces of a Spark task, measured on one core."""
    from clickstream.connectors.fetch import parse_ndjson, render_range
    from clickstream.connectors.offsets import SparkStream
    from clickstream.limits import DEFAULT_START_MS
    from clickstream.workers.arrow import interaction_arrow_schema
    from clickstream.workers.generator import render_ndjson

    schema = interaction_arrow_schema()
    definition = SparkStream(args.seed, 0, DEFAULT_START_MS, 1_000_000)
    results: list[Result] = []
    catalog = {"max_users": args.max_users, "max_products": args.max_products}

    began = time.perf_counter()
    render_range(definition, 0, COMPONENT_ROWS, args.max_users, args.max_products, schema)
    build_s = time.perf_counter() - began
    results.append(Result("catalog build (first call)", 0, build_s, f"{build_s:.1f} s once per Python worker"))

    position = [0]

    def advance() -> int:
        position[0] += COMPONENT_ROWS
        return position[0]

    def arrow() -> int:
        batch = render_range(definition, advance(), COMPONENT_ROWS, args.max_users, args.max_products, schema)
        return int(batch.num_rows)

    results.append(Result("render_arrow (executor mode)", *_repeat(arrow, COMPONENT_SECONDS), "no JSON"))

    def ndjson_at(first: int) -> bytes:
        return render_ndjson(seed=definition.seed, shard=0, first_seq=first, count=COMPONENT_ROWS,
                             start_ms=definition.start_ms, **catalog)

    def ndjson() -> int:
        ndjson_at(advance())
        return COMPONENT_ROWS

    results.append(Result("render_ndjson", *_repeat(ndjson, COMPONENT_SECONDS), "the server's NDJSON path"))

    if args.url:
        results.append(_fetch_component(args.url, definition, advance))

    data = ndjson_at(0)
    row_bytes = len(data) / COMPONENT_ROWS

    def parse() -> int:
        return int(parse_ndjson(data, schema).num_rows)

    parsed = _repeat(parse, COMPONENT_SECONDS)
    results.append(Result("pyarrow.json parse (fallback)", *parsed,
                          f"{parsed[0] * row_bytes / parsed[1] / 1e6:.0f} MB/s, {row_bytes:.0f} B/row"))
    return results


def _fetch_component(url: str, definition: SparkStream, advance: Callable[[], int]) -> Result:
    """What an HTTP-mode task does per request: GET a format=arrow range from the server, read the IPC stream."""
    import pyarrow as pa
    import pyarrow.ipc as pa_ipc

    from clickstream.connectors.fetch import NDJSON, HttpRangeClient

    client = HttpRangeClient(url, 60.0)

    def fetch() -> int:
        body = client.get(definition, advance(), COMPONENT_ROWS)
        return int(pa_ipc.open_stream(pa.py_buffer(body)).read_all().num_rows)

    fetch()
    note = "format=arrow, server on this machine" if client.format != NDJSON else "server fell back to NDJSON"
    result = Result("HTTP GET + IPC read", *_repeat(fetch, COMPONENT_SECONDS), note)
    client.close()
    return result


def _spark(args: argparse.Namespace) -> Any:
    from pyspark.sql import SparkSession

    from clickstream.connectors.spark import register

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["PYSPARK_PYTHON"] = sys.executable  # workers need the interpreter that has clickstream
    spark = (
        SparkSession.builder.master(args.master)
        .appName("clickstream-bench")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", str(args.partitions))
        .getOrCreate()
    )
    # Stopping the rate query interrupts a running batch, which Spark logs at ERROR with stack traces.
    spark.sparkContext.setLogLevel("OFF")
    register(spark)
    return spark


def _run_query(frame: Any, args: argparse.Namespace, name: str, note: str, available_now: bool) -> Result:
    """Stream `frame` into noop until warm-up + `--batches` full batches; measure the latter.

    Our source runs with Trigger.AvailableNow over its backlog and ends by itself; the rate source
    has no end, so it is stopped once enough batches are done.
    """
    writer = frame.writeStream.format("noop").queryName(name.replace(" ", "_").replace("-", "_"))
    query = writer.trigger(availableNow=True).start() if available_now else writer.start()

    def full() -> list[dict[str, Any]]:
        batches = [p for p in query.recentProgress if p["numInputRows"]]
        return batches[:1] + [p for p in batches[1:] if p["numInputRows"] == args.batch_rows]

    try:
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline and len(full()) <= args.batches and query.isActive:
            time.sleep(0.2)
        if query.exception() is not None:
            raise RuntimeError(f"{name}: {query.exception()}")
    finally:
        query.stop()
    done = full()
    if len(done) <= args.batches:
        raise RuntimeError(f"{name}: fewer than {args.batches} full batches after the warm-up")
    measured = done[1 : args.batches + 1]
    rows = sum(p["numInputRows"] for p in measured)
    seconds = sum(p["durationMs"]["triggerExecution"] for p in measured) / 1000
    add_batch = sum(p["durationMs"].get("addBatch", 0) for p in measured) / 1000
    warm_s = done[0]["durationMs"]["triggerExecution"] / 1000
    return Result(name, rows, seconds, f"{note}; warm-up batch {warm_s:.1f} s, addBatch {add_batch / seconds:.0%}")


def spark_runs(args: argparse.Namespace) -> list[Result]:
    spark = _spark(args)
    results: list[Result] = []
    # A backlog (start time in the past) of warm-up + measured batches: rows/s is then Spark's pace, not the
    # clock's. The event rate is low enough that the seconds before the query freezes "now" add little.
    backlog_rows = args.batch_rows * (args.batches + 1)
    rate_eps = 20_000
    start_ms = int(time.time() * 1000) - math.ceil(backlog_rows * 1000 / rate_eps)
    common = {
        "seed": str(args.seed),
        "rowsPerSecond": str(rate_eps),
        "startTime": str(start_ms),
        "maxRowsPerBatch": str(args.batch_rows),
        "numPartitions": str(args.partitions),
    }
    try:
        for mode in args.modes:
            if mode == "rate":
                frame = (
                    spark.readStream.format("rate-micro-batch")
                    .option("rowsPerBatch", args.batch_rows)
                    .option("numPartitions", args.partitions)
                    .load()
                )
                results.append(_run_query(frame, args, "rate-micro-batch", "Spark's own, 2 columns", False))
            elif mode == "executor":
                frame = (
                    spark.readStream.format("clickstream")
                    .options(**common, maxUsers=str(args.max_users), maxProducts=str(args.max_products))
                    .load()
                )
                results.append(_run_query(frame, args, "clickstream executor", "21 columns", True))
            elif mode == "http":
                if not args.url:
                    print("skipping http: no --url", file=sys.stderr)
                    continue
                frame = spark.readStream.format("clickstream").options(**common, url=args.url).load()
                results.append(_run_query(frame, args, "clickstream http", f"21 columns from {args.url}", True))
    finally:
        spark.stop()
    return results


def print_table(title: str, results: list[Result], baseline: float | None = None) -> None:
    print(f"\n{title}")
    header = f"{'what':28} {'rows':>12} {'seconds':>8} {'rows/s':>12}"
    if baseline:
        header += f" {'vs rate':>8}"
    print(header + "  note")
    for r in results:
        line = f"{r.name:28} {r.rows:12,d} {r.seconds:8.2f} {r.rate:12,.0f}"
        if baseline:
            line += f" {r.rate / baseline:8.2f}"
        print(line + f"  {r.note}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="server base URL for the HTTP mode, e.g. http://127.0.0.1:8000")
    parser.add_argument("--modes", default="rate,executor,http", help="comma-separated: rate, executor, http")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--partitions", type=int, default=2, help="numPartitions of every source")
    parser.add_argument("--batch-rows", type=int, default=500_000, help="rows per micro-batch")
    parser.add_argument("--batches", type=int, default=3, help="measured micro-batches per source")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-users", type=int, default=100_000, help="executor mode catalog (server default)")
    parser.add_argument("--max-products", type=int, default=50_000)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per source before giving up")
    parser.add_argument("--skip-components", action="store_true")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]

    load = os.getloadavg()
    print(f"cpus {os.cpu_count()}, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} (1, 5, 15 min)")
    parts = [] if args.skip_components else components(args)
    if parts:
        print_table(f"components, one core, {COMPONENT_ROWS:,} rows per call", parts)
    runs = spark_runs(args)
    rate = next((r.rate for r in runs if r.name == "rate-micro-batch"), None)
    print_table(f"Spark {args.master} into noop, {args.batches} x {args.batch_rows:,}-row batches", runs, rate)
    if args.json:
        with open(args.json, "w") as f:
            json.dump([vars(r) | {"rows_per_s": r.rate} for r in parts + runs], f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
