"""The Spark data source (`connectors/`): offsets, exactly-once restarts, executor and HTTP modes, batch reads,
and the server's socket feed read by Spark's own `format("socket")`.

The Spark tests share one `local[2]` session (starting one costs 5-8 s) and read a few thousand rows
each; they skip, saying why, only when pyspark or Java is missing. The arithmetic behind offsets is
tested without Spark.
"""

from __future__ import annotations

import ast
import itertools
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from clickstream.connectors.offsets import (
    SourceOptions,
    SparkStream,
    from_offset,
    next_end,
    offset_json,
    split_range,
    sub_ranges,
)
from clickstream.limits import DEFAULT_START_MS
from clickstream.times import parse_time_ms

from .conftest import wait_for

# A small catalog: the generator builds it in each Python worker, and the default one takes seconds.
SMALL_CATALOG = {"maxUsers": "2000", "maxProducts": "500"}

# ---- pure arithmetic: no Spark ----


def test_latest_position_follows_the_clock_and_the_offsets_carry_the_definition() -> None:
    definition = SparkStream(seed=7, shard=1, start_ms=1_000_000, rows_per_second=1500)
    assert definition.latest(999_000) == 0  # before the start
    assert definition.latest(1_002_000) == 3000
    assert definition.latest(1_002_001) == math.floor(2001 * 1.5)
    offset = offset_json(definition, 42)
    assert offset == {"seed": 7, "shard": 1, "start_ms": 1_000_000, "rate": 1500, "funnel": "mix", "seq": 42}
    assert from_offset(offset) == (definition, 42)
    # Admission limits, and a clock stepped back never moves the stream backwards.
    assert next_end(definition, 100, 1_002_000) == 3000
    assert next_end(definition, 100, 1_002_000, max_rows=500) == 600
    assert next_end(definition, 2900, 1_002_000, min_rows=500) == 2900
    assert next_end(definition, 5000, 1_002_000) == 5000


def test_batches_split_into_contiguous_ranges() -> None:
    definition = SparkStream(7, 0, 0, 1000)
    ranges = split_range(definition, 10, 21, 3)
    assert [(r.first_seq, r.count) for r in ranges] == [(10, 4), (14, 4), (18, 3)]
    assert [(r.first_seq, r.count) for r in split_range(definition, 5, 7, 4)] == [(5, 1), (6, 1)]
    assert split_range(definition, 5, 5, 4) == []
    assert sub_ranges(0, 250, 100) == [(0, 100), (100, 100), (200, 50)]


def test_options_parse_and_refuse_to_continue_a_different_stream() -> None:
    options = SourceOptions.parse({"SEED": "3", "rowsPerSecond": "250", "startTime": "2025-01-01T00:00:00Z"})
    assert (options.seed, options.rows_per_second, options.start_ms) == (3, 250.0, parse_time_ms("1735689600000"))
    assert parse_time_ms("2025-01-01T00:00:00") == parse_time_ms("2025-01-01T00:00:00+00:00")
    checkpointed = SparkStream(seed=3, shard=0, start_ms=options.start_ms or 0, rows_per_second=250)
    options.check_matches(checkpointed)
    SourceOptions.parse({}).check_matches(checkpointed)  # unset options take the checkpoint's values
    with pytest.raises(ValueError, match="seed=4 differs"):
        SourceOptions.parse({"seed": "4"}).check_matches(checkpointed)
    with pytest.raises(ValueError, match="unknown clickstream option"):
        SourceOptions.parse({"rowsPerSecnd": "5"})


def test_the_funnel_is_part_of_the_checkpointed_stream() -> None:
    retail = SparkStream(seed=7, shard=0, start_ms=1_000_000, rows_per_second=1000, funnel="retail")
    offset = offset_json(retail, 42)
    assert list(offset) == ["seed", "shard", "start_ms", "rate", "funnel", "seq"]
    assert from_offset(json.loads(json.dumps(offset))) == (retail, 42)
    # A checkpoint written before streams had a funnel was read with the default one.
    old = {"seed": 7, "shard": 0, "start_ms": 1_000_000, "rate": 1000, "seq": 42}
    assert from_offset(old) == (SparkStream(7, 0, 1_000_000, 1000, "mix"), 42)
    with pytest.raises(ValueError, match="not a clickstream offset"):
        from_offset({**offset, "funnel": "shop"})
    assert SourceOptions.parse({"funnel": "Retail"}).stream(default_start_ms=1_000_000) == retail
    SourceOptions.parse({}).check_matches(retail)  # unset: the checkpoint's funnel
    with pytest.raises(ValueError, match="funnel=mix differs from the checkpointed stream's funnel=retail"):
        SourceOptions.parse({"funnel": "mix"}).check_matches(retail)


def test_options_name_the_funnel_and_the_store_countries() -> None:
    options = SourceOptions.parse({"funnel": "retail", "storeCountries": "us, gb,US"})
    assert (options.funnel, options.store_countries) == ("retail", ("GB", "US"))
    assert (SourceOptions.parse({}).funnel, SourceOptions.parse({}).store_countries) == (None, ())
    with pytest.raises(ValueError, match="option funnel must be one of mix, retail, got 'shop'"):
        SourceOptions.parse({"funnel": "shop"})
    with pytest.raises(ValueError, match=r"option storeCountries must be ISO country codes among .*unknown: XX"):
        SourceOptions.parse({"storeCountries": "US,XX"})
    # A server generates from its own STORE_COUNTRIES: a different set here would go unnoticed.
    with pytest.raises(ValueError, match=r"storeCountries applies when Spark generates the events \(no url\)"):
        SourceOptions.parse({"url": "http://127.0.0.1:8000", "storeCountries": "US"})
    assert SourceOptions.parse({"url": "http://127.0.0.1:8000", "funnel": "retail"}).funnel == "retail"


def test_executor_rendering_is_the_servers_store_of_that_funnel_and_those_countries() -> None:
    pytest.importorskip("pyarrow", reason="pyarrow not installed: pip install -e '.[spark]'")
    from urllib.parse import parse_qs, urlsplit

    from clickstream.connectors.fetch import parse_ndjson, render_range, request_target
    from clickstream.workers.arrow import interaction_arrow_schema
    from clickstream.workers.generator import EventGenerator
    from clickstream.workers.model import ModelConfig

    stream = SparkStream(seed=5, shard=1, start_ms=DEFAULT_START_MS, rows_per_second=100, funnel="retail")
    query = parse_qs(urlsplit(request_target("", stream, 200, 3000)).query)
    assert (query["seed"], query["funnel"]) == (["5"], ["retail"])  # HTTP mode asks the server for it

    schema = interaction_arrow_schema()
    rendered = render_range(stream, 200, 3000, 2000, 500, schema, store_countries=("DE", "FR"))
    # What a server with STORE_COUNTRIES=DE,FR answers to seed=5&shard=1&funnel=retail (server/seeded.py).
    store = ModelConfig(seed=5, max_users=2000, max_products=500, funnel="retail", store_countries=("DE", "FR"))
    expected = parse_ndjson(EventGenerator(store, 1, DEFAULT_START_MS).render(200, 3000).tobytes(), schema)
    assert rendered.equals(expected)
    assert set(rendered.column("country").to_pylist()) == {"DE", "FR"}
    # The retail funnel has no clicks or wishlists, the default mix has plenty.
    assert not {"click", "wishlist"} & set(rendered.column("interaction_type").to_pylist())
    mix = render_range(SparkStream(5, 1, DEFAULT_START_MS, 100), 200, 3000, 2000, 500, schema)
    assert {"click", "wishlist"} <= set(mix.column("interaction_type").to_pylist())


def test_stream_reader_plans_batches_from_offsets_and_the_clock() -> None:
    pytest.importorskip("pyspark", reason="pyspark not installed: pip install -e '.[spark]'")
    from clickstream.connectors.spark import ADMISSION_CONTROL, ClickstreamStreamReader

    wall = [1_000.0]
    options = SourceOptions.parse({"rowsPerSecond": "1000", "numPartitions": "3", "maxRowsPerBatch": "2500"})
    reader = ClickstreamStreamReader(None, options, clock=lambda: wall[0])  # type: ignore[arg-type]
    start = reader.initialOffset()
    assert start == {"seed": 7, "shard": 0, "start_ms": 1_000_000, "rate": 1000, "funnel": "mix", "seq": 0}
    wall[0] += 10  # 10,000 events later, and a second call still gives the same initial offset
    assert reader.initialOffset() == start
    if ADMISSION_CONTROL:
        from pyspark.sql.streaming.datasource import ReadAllAvailable, ReadMaxRows

        assert reader.getDefaultReadLimit() == ReadMaxRows(2500)
        end = reader.latestOffset(start, ReadMaxRows(2500))
        assert end["seq"] == 2500
        assert reader.latestOffset(start, ReadAllAvailable())["seq"] == 10_000
        # A new reader (a restart) continues from the offset alone, with the checkpointed start time.
        later = ClickstreamStreamReader(None, options, clock=lambda: wall[0] + 5)  # type: ignore[arg-type]
        assert later.latestOffset(end, ReadAllAvailable()) == {**start, "seq": 15_000}
        reader.prepareForTriggerAvailableNow()
        wall[0] += 100
        assert reader.latestOffset(end, ReadAllAvailable())["seq"] == 10_000  # frozen at "now"
    else:
        end = reader.latestOffset()
        assert end["seq"] == 2500
    parts = reader.partitions(start, end)
    assert [(p.part.first_seq, p.part.count) for p in parts] == [(0, 834), (834, 833), (1667, 833)]
    with pytest.raises(ValueError, match="seed=9 differs"):
        ClickstreamStreamReader(None, SourceOptions.parse({"seed": "9"})).latestOffset(end)  # type: ignore[arg-type]


def test_http_client_falls_back_to_ndjson_when_the_server_refuses_arrow() -> None:
    """An older server (or one without pyarrow) answers format=arrow with a 400 naming `format`."""
    pa = pytest.importorskip("pyarrow", reason="pyarrow not installed: pip install -e '.[spark]'")
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlsplit

    from clickstream.connectors.fetch import NDJSON, HttpRangeClient
    from clickstream.workers.arrow import interaction_arrow_schema, render_arrow_seeded
    from clickstream.workers.generator import render_ndjson

    definition = SparkStream(seed=5, shard=1, start_ms=DEFAULT_START_MS, rows_per_second=100)
    # Values typed Any: mypy matches a splatted dict against every keyword argument, str ones included.
    catalog: dict[str, Any] = {"max_users": 2000, "max_products": 500}
    asked: list[str] = []

    class NdjsonOnly(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
            asked.append(query["format"])
            if query["format"] != "ndjson":
                status, body = 400, json.dumps({"parameter": "format", "allowed": "one of ndjson, sse"}).encode()
            else:
                status, body = 200, render_ndjson(seed=5, shard=1, first_seq=int(query["offset"]),
                                                  count=int(query["count"]), start_ms=definition.start_ms,
                                                  **catalog)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), NdjsonOnly)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    client = HttpRangeClient(f"http://127.0.0.1:{httpd.server_address[1]}", 10)
    try:
        schema = interaction_arrow_schema()
        first = client.get_table(definition, 100, 300, schema)
        second = client.get_table(definition, 400, 50, schema)
    finally:
        client.close()
        httpd.shutdown()
        httpd.server_close()
    assert client.format == NDJSON and asked == ["arrow", "ndjson", "ndjson"]  # asked for Arrow once only
    expected = render_arrow_seeded(seed=5, shard=1, first_seq=100, count=350, start_ms=definition.start_ms,
                                   **catalog)
    assert pa.concat_tables([first, second]).combine_chunks().equals(pa.Table.from_batches([expected]))


# ---- Spark ----


def _skip_reason() -> str | None:
    try:
        import pyarrow  # noqa: F401
        import pyspark  # noqa: F401
    except ImportError as e:
        return f"pyspark/pyarrow not installed ({e.name}): pip install -e '.[spark]'"
    java_home = os.environ.get("JAVA_HOME")
    if shutil.which("java") is None and not (java_home and Path(java_home, "bin", "java").exists()):
        return "Java is not installed (Spark needs a JDK 17+ on PATH or JAVA_HOME)"
    return None


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One `local[2]` SparkSession for the whole run, with the clickstream source registered."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    from pyspark.sql import SparkSession

    from clickstream.connectors.spark import register

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # Spark's Python workers must run this interpreter (the one with clickstream installed); the
    # planner workers read only the environment variable, not spark.pyspark.python.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]")
        .appName("clickstream-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.streaming.stopTimeout", "30s")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    register(session)
    yield session
    session.stop()


def _stream(spark: Any, **options: str) -> Any:
    reader = spark.readStream.format("clickstream")
    for key, value in options.items():
        reader = reader.option(key, value)
    return reader.load()


def _source_progress(query: Any) -> list[tuple[dict[str, Any], dict[str, Any], int]]:
    """(start offset, end offset, rows) of every micro-batch that read something."""

    def parse(offset: str | None) -> dict[str, Any] | None:
        # 4.2+ reports offsets as JSON (a first batch's start as "null"), 4.0 as the Python repr of the dict.
        if offset is None or offset == "null":
            return None
        parsed: dict[str, Any] = json.loads(offset) if offset.startswith('{"') else ast.literal_eval(offset)
        return parsed

    batches = []
    for progress in query.recentProgress:
        source, rows = progress["sources"][0], progress["numInputRows"]
        if rows:
            end = parse(source["endOffset"])
            assert end is not None
            # Spark reports no start for a query's first batch: it began at the initial offset.
            start = parse(source["startOffset"])
            batches.append((start or {**end, "seq": end["seq"] - rows}, end, rows))
    return batches


def _check_store_times(rows: list[Any], start_ms: int, max_users: int = 2000, max_products: int = 500) -> None:
    """The rows' timestamps are the store's own event time for their positions (seed 7, shard 0)."""
    from clickstream.workers.arrow import render_arrow_seeded

    ordered = sorted(rows, key=lambda r: r.seq)
    first = ordered[0].seq
    batch = render_arrow_seeded(seed=7, shard=0, first_seq=first, count=len(ordered), start_ms=start_ms,
                                max_users=max_users, max_products=max_products)
    expected = [t.replace(tzinfo=None) for t in batch.column("timestamp").to_pylist()]
    assert [r.timestamp for r in ordered] == expected
    assert expected[0] >= datetime.fromtimestamp(start_ms / 1000, tz=UTC).replace(tzinfo=None)


def _check_contiguous(batches: list[tuple[dict[str, Any], dict[str, Any], int]], seqs: list[int]) -> None:
    """Each batch starts where the last ended, and the sink holds each position exactly once."""
    assert batches, "no micro-batch read anything"
    for (_s, end, _n), (start, _e, _m) in itertools.pairwise(batches):
        assert start == end
    for start, end, rows in batches:
        assert rows == end["seq"] - start["seq"]
    first, last = batches[0][0]["seq"], batches[-1][1]["seq"]
    assert sorted(seqs) == list(range(first, last)), "duplicate or missing positions"


@pytest.mark.spark
def test_executor_mode_streams_every_position_once(spark: Any, tmp_path: Path) -> None:
    # A backlog of 6000 events; a low rate keeps the seconds the query takes to start from adding many more.
    start_ms = int(time.time() * 1000) - 30_000
    events = _stream(spark, startTime=str(start_ms), rowsPerSecond="200", maxRowsPerBatch="1500", **SMALL_CATALOG)
    query = (
        events.select("seq", "timestamp")
        .writeStream.format("memory")
        .queryName("executor_mode")
        .option("checkpointLocation", str(tmp_path / "ck"))
        .trigger(availableNow=True)
        .start()
    )
    assert query.awaitTermination(120)
    batches = _source_progress(query)
    rows = spark.sql("SELECT seq, timestamp FROM executor_mode").collect()
    from clickstream.connectors.spark import ADMISSION_CONTROL

    # 6000+ rows in batches of 1500. pyspark < 4.2 has no admission control: Spark's AvailableNow wrapper
    # takes the first capped latestOffset() as the end of the run.
    assert len(batches) >= (4 if ADMISSION_CONTROL else 1)
    assert all(b[2] <= 1500 for b in batches)
    _check_contiguous(batches, [r.seq for r in rows])
    assert batches[0][0]["seq"] == 0 and batches[0][0]["start_ms"] == start_ms
    _check_store_times(rows, start_ms)


@pytest.mark.spark
def test_restart_from_checkpoint_continues_and_a_batch_rereads_identically(spark: Any, tmp_path: Path) -> None:
    checkpoint, output = str(tmp_path / "ck"), str(tmp_path / "out")
    # No startTime: the first run picks "now" and the offsets in the checkpoint must keep it.
    options = {"rowsPerSecond": "2000", "numPartitions": "3", **SMALL_CATALOG}

    def run(trigger: dict[str, Any]) -> Any:
        # The parquet sink is itself exactly-once (its log is tied to the checkpoint's batch ids).
        return (
            _stream(spark, **options)
            .writeStream.format("parquet")
            .option("path", output)
            .option("checkpointLocation", checkpoint)
            .trigger(**trigger)
            .start()
        )

    first = run({"processingTime": "500 milliseconds"})
    deadline = time.monotonic() + 90
    while len(_source_progress(first)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    first.stop()
    before = _source_progress(first)
    assert len(before) >= 2, "the first run never read two batches"

    time.sleep(0.5)  # let the stream move on, so the restart has something to read
    second = run({"availableNow": True})
    assert second.awaitTermination(120)
    after = _source_progress(second)
    assert after, "the restarted query read nothing"
    assert after[0][0] == before[-1][1], "the restart did not continue at the checkpointed offset"

    table = spark.read.parquet(output)
    _check_contiguous(before + after, [r.seq for r in table.select("seq").collect()])

    # Re-read one streamed batch with a batch read of its offset range: the same rows, timestamps included.
    start, end, _rows = after[0]
    reread = (
        spark.read.format("clickstream")
        .option("startTime", str(start["start_ms"]))
        .option("rowsPerSecond", str(start["rate"]))
        .option("offset", str(start["seq"]))
        .option("count", str(end["seq"] - start["seq"]))
        .options(**SMALL_CATALOG)
        .load()
    )
    streamed = table.where(f"seq >= {start['seq']} AND seq < {end['seq']}")
    assert reread.count() == streamed.count() == end["seq"] - start["seq"]
    assert reread.exceptAll(streamed).isEmpty() and streamed.exceptAll(reread).isEmpty()


@pytest.mark.spark
def test_http_mode_streams_every_position_once(spark: Any, server: Any, tmp_path: Path) -> None:
    start_ms = int(time.time() * 1000) - 20_000  # 5000 events of backlog
    events = _stream(spark, url=server.url, startTime=str(start_ms), rowsPerSecond="250", maxRowsPerBatch="2000")
    query = (
        events.select("seq", "timestamp", "interaction_id")
        .writeStream.format("memory")
        .queryName("http_mode")
        .option("checkpointLocation", str(tmp_path / "ck"))
        .trigger(availableNow=True)
        .start()
    )
    assert query.awaitTermination(120)
    batches = _source_progress(query)
    rows = spark.sql("SELECT seq, timestamp, interaction_id FROM http_mode").collect()
    assert len(batches) >= 3
    _check_contiguous(batches, [r.seq for r in rows])
    assert len({r.interaction_id for r in rows}) == len(rows)
    _check_store_times(rows, start_ms, max_users=100_000, max_products=50_000)

    # The same range generated inside the executors (the fixture's catalog is the default one) is the
    # same rows: a query can move between the two modes and still replay identically.
    def batch_read(**options: str) -> Any:
        return (
            spark.read.format("clickstream")
            .options(startTime=str(start_ms), rowsPerSecond="250", offset="500", count="2000", **options)
            .load()
        )

    for funnel in ("mix", "retail"):
        over_http, generated = batch_read(url=server.url, funnel=funnel), batch_read(funnel=funnel)
        assert over_http.count() == generated.count() == 2000
        assert over_http.exceptAll(generated).isEmpty() and generated.exceptAll(over_http).isEmpty()
    # The server was asked for the retail funnel, not its own FUNNEL: it has no clicks.
    assert over_http.where("interaction_type = 'click'").isEmpty()


@pytest.mark.spark
def test_batch_read_has_the_schema_and_exactly_the_range(spark: Any) -> None:
    from clickstream.schema import interaction_spark_ddl

    frame = (
        spark.read.format("clickstream")
        .option("startTime", "2025-01-01T00:00:00Z")
        .option("rowsPerSecond", "500")
        .option("offset", "1000")
        .option("count", "3000")
        .option("numPartitions", "3")
        .options(**SMALL_CATALOG)
        .load()
    )
    expected = spark.createDataFrame([], interaction_spark_ddl()).schema
    assert frame.schema == expected
    assert frame.rdd.getNumPartitions() == 3
    rows = frame.collect()
    assert sorted(r.seq for r in rows) == list(range(1000, 4000))
    start_ms = parse_time_ms("2025-01-01T00:00:00Z")
    _check_store_times(rows, start_ms)
    assert {r.interaction_type for r in rows} <= {"view", "click", "add_to_cart", "purchase", "wishlist"}


@pytest.mark.spark
def test_socket_feed_serves_sparks_socket_source(spark: Any, fresh_server: Any) -> None:
    from pyspark.sql.functions import col, from_json

    from clickstream.schema import interaction_spark_ddl

    server = fresh_server("--workers", "1", "--socket-port", "0", "--socket-rate", "2000")
    assert server.socket_port, server.log()
    lines = (
        spark.readStream.format("socket")
        .option("host", "127.0.0.1")
        .option("port", server.socket_port)
        # Without it, Spark's socket reader slows quadratically with the batch size (see connectors/README.md).
        .option("numPartitions", 8)
        .load()
    )
    events = lines.select(from_json(col("value"), interaction_spark_ddl()).alias("e")).select("e.*")
    query = (
        events.writeStream.format("memory")
        .queryName("socket_feed")
        .trigger(processingTime="500 milliseconds")
        .start()
    )
    try:
        wait_for(lambda: spark.sql("SELECT count(*) AS n FROM socket_feed").first().n >= 3000, timeout=90, interval=0.5)
    finally:
        query.stop()
    frame = spark.sql("SELECT * FROM socket_feed")
    assert frame.schema == spark.createDataFrame([], interaction_spark_ddl()).schema
    counts = frame.selectExpr(
        "count(*) AS n",
        "count(DISTINCT interaction_id) AS ids",
        # from_json gives nulls where a line does not parse: every required field must be there.
        "count_if(timestamp IS NULL OR seq IS NULL OR interaction_id IS NULL OR user_id IS NULL) AS broken",
        "count_if(interaction_type NOT IN ('view', 'click', 'add_to_cart', 'purchase', 'wishlist')) AS odd_types",
    ).first()
    assert counts.n >= 3000
    assert counts.ids == counts.n, "duplicate interaction_ids"
    assert counts.broken == 0 and counts.odd_types == 0
