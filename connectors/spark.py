"""A Spark Python Data Source named "clickstream": replayable, exactly-once ingestion of the event stream.

    from clickstream.connectors.spark import register
    register(spark)
    events = (spark.readStream.format("clickstream")
              .option("url", "http://127.0.0.1:8000")   # omit to generate inside the executors
              .option("rowsPerSecond", 100_000)
              .load())

Every offset names a position in a stream defined by (seed, shard, startTime, rowsPerSecond, funnel), so a
micro-batch is a pure function of its two offsets: a restarted query continues where its checkpoint
says, and a replayed batch reads the same events with the same timestamps (see `streams.py`). The
latest position is computed from the stream and the clock, never asked of a server.

pyspark compatibility: 4.2+ passes (start, limit) to `latestOffset`, which makes the reader stateless
and honours admission limits (`maxRowsPerBatch`). 4.0 and 4.1 call `latestOffset()` without arguments;
there the driver's reader remembers the end of the last batch Spark planned or committed, the same way
pyspark's own wrapper for simple stream readers does (the only reader state in this module).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from pyspark.sql.datasource import DataSource, DataSourceReader, DataSourceStreamReader, InputPartition
from pyspark.sql.types import StructType

from clickstream.schema import interaction_spark_ddl

from .offsets import (
    Clock,
    OffsetRange,
    SourceOptions,
    from_offset,
    next_end,
    now_ms,
    offset_json,
    split_range,
)

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import SparkSession

try:  # pyspark >= 4.2
    from pyspark.sql.streaming.datasource import (
        ReadAllAvailable,
        ReadLimit,
        ReadMaxRows,
        ReadMinRows,
        SupportsTriggerAvailableNow,
    )
except ImportError:  # pyspark 4.0 / 4.1: no admission control, no Trigger.AvailableNow hook

    class SupportsTriggerAvailableNow:  # type: ignore[no-redef]
        """Stand-in so the reader class can be declared the same way on every 4.x."""

    ReadLimit = Any  # type: ignore[misc,assignment]
    ReadAllAvailable = ReadMaxRows = ReadMinRows = None  # type: ignore[misc,assignment]

__all__ = ["ClickstreamDataSource", "register"]

FORMAT_NAME = "clickstream"

# 4.2 gave latestOffset its (start, limit) parameters; pyspark itself tells the two apart the same way.
ADMISSION_CONTROL: bool = len(inspect.signature(DataSourceStreamReader.latestOffset).parameters) > 1


def register(spark: SparkSession) -> None:
    """Make `format("clickstream")` available to `spark.read` and `spark.readStream`."""
    spark.dataSource.register(ClickstreamDataSource)


def arrow_schema(schema: StructType) -> pa.Schema:
    """The Arrow schema Spark expects batches from `read()` to have, computed the way pyspark does."""
    from pyspark.sql.pandas.types import to_arrow_schema

    if "timezone" in inspect.signature(to_arrow_schema).parameters:  # 4.1+
        return to_arrow_schema(schema, timezone="UTC")
    return to_arrow_schema(schema)  # 4.0: timestamps are UTC by default


@dataclass(frozen=True)
class RangePartition(InputPartition):
    """One Spark task's share of a batch: a contiguous range of positions, and how to get them."""

    part: OffsetRange
    url: str | None
    rows_per_request: int
    max_users: int
    max_products: int
    store_countries: tuple[str, ...]
    timeout_s: float


class _RangeReading:
    """`read()` for both readers: a partition carries everything needed, so tasks share no state."""

    schema: StructType
    _arrow: pa.Schema | None = None

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        from .fetch import read_range  # pyarrow is only needed where rows are read

        assert isinstance(partition, RangePartition), f"unexpected partition {partition!r}"
        if self._arrow is None:
            self._arrow = arrow_schema(self.schema)
        return read_range(
            partition.part,
            self._arrow,
            url=partition.url,
            rows_per_request=partition.rows_per_request,
            max_users=partition.max_users,
            max_products=partition.max_products,
            store_countries=partition.store_countries,
            timeout_s=partition.timeout_s,
        )

    def _partitions(self, options: SourceOptions, ranges: list[OffsetRange]) -> list[RangePartition]:
        return [
            RangePartition(
                part=r,
                url=options.url,
                rows_per_request=options.rows_per_request,
                max_users=options.max_users,
                max_products=options.max_products,
                store_countries=options.store_countries,
                timeout_s=options.timeout_s,
            )
            for r in ranges
        ]


class ClickstreamDataSource(DataSource):
    """`format("clickstream")`: the event stream, read from a server (`url`) or generated in executors.

    Options (all optional): url, seed (7), shard (0), rowsPerSecond (1000, the event-time rate of the
    stream), startTime (ms or ISO-8601; default: when the query first starts, then kept in the offsets),
    funnel (mix | retail), numPartitions (2), maxUsers (100000), maxProducts (50000) and storeCountries
    (every market) for executor generation,
    maxRowsPerBatch (none), startingOffset (earliest | latest | a position), rowsPerRequest (50000),
    timeoutSeconds (60); for `spark.read`: offset (0) and count (default: all events up to now).
    """

    def __init__(self, options: dict[str, str]) -> None:
        super().__init__(options)
        # Validate at definition time, so a typo fails `load()` instead of a task on an executor.
        self.parsed = SourceOptions.parse(options)

    @classmethod
    def name(cls) -> str:
        return FORMAT_NAME

    def schema(self) -> str:
        return interaction_spark_ddl()

    def reader(self, schema: StructType) -> DataSourceReader:
        return ClickstreamBatchReader(schema, self.parsed)

    def streamReader(self, schema: StructType) -> DataSourceStreamReader:
        return ClickstreamStreamReader(schema, self.parsed)


class ClickstreamBatchReader(_RangeReading, DataSourceReader):
    """`spark.read.format("clickstream")`: positions [offset, offset + count) of one stream."""

    def __init__(self, schema: StructType, options: SourceOptions, clock: Clock = time.time) -> None:
        self.schema = schema
        self.options = options
        wall_ms = now_ms(clock)
        self.stream = options.stream(default_start_ms=wall_ms)
        if options.count is not None:
            self.end = options.offset + options.count
        elif options.start_ms is not None:
            # Without a count, everything the stream has produced by now.
            self.end = max(options.offset, self.stream.latest(wall_ms))
        else:
            raise ValueError(
                "a batch read of clickstream needs option count (events from offset), or a startTime in the "
                "past to read every event up to now"
            )

    def partitions(self) -> Sequence[RangePartition]:
        ranges = split_range(self.stream, self.options.offset, self.end, self.options.num_partitions)
        # Spark wants at least one partition; an empty range reads nothing.
        return self._partitions(self.options, ranges or [OffsetRange(self.stream, self.options.offset, 0)])


class ClickstreamStreamReader(_RangeReading, DataSourceStreamReader, SupportsTriggerAvailableNow):
    """Micro-batches [start, end) of one stream, each split into `numPartitions` contiguous ranges."""

    def __init__(self, schema: StructType, options: SourceOptions, clock: Clock = time.time) -> None:
        self.schema = schema
        self.options = options
        self.clock = clock  # injectable for tests; time.time pickles by reference
        # Trigger.AvailableNow: the wall time at which "available" was frozen.
        self.frozen_ms: int | None = None
        # Used only on pyspark < 4.2, whose latestOffset() is not told where the batch starts.
        self.last_end: dict[str, Any] | None = None
        # Spark asks for the initial offset more than once per query (to plan and again to read the
        # first batch): a defaulted start time must be chosen once, not at every call.
        self.initial: dict[str, Any] | None = None

    def _now_ms(self) -> int:
        wall_ms = now_ms(self.clock)
        return wall_ms if self.frozen_ms is None else min(wall_ms, self.frozen_ms)

    def initialOffset(self) -> dict[str, Any]:
        if self.initial is None:
            wall_ms = self._now_ms()
            # The only place a default start time is chosen; from here on it travels in the offsets.
            stream = self.options.stream(default_start_ms=wall_ms)
            starting = self.options.starting_offset
            seq = 0 if starting == "earliest" else stream.latest(wall_ms) if starting == "latest" else int(starting)
            self.initial = offset_json(stream, seq)
        return self.initial

    def latestOffset(self, start: dict[str, Any] | None = None, limit: ReadLimit | None = None) -> dict[str, Any]:
        if start is None:  # pyspark < 4.2
            start = self.last_end or self.initialOffset()
        stream, seq = from_offset(start)
        self.options.check_matches(stream)
        max_rows = min_rows = None
        if ReadMaxRows is not None and isinstance(limit, ReadMaxRows):
            max_rows = limit.max_rows
        elif ReadMinRows is not None and isinstance(limit, ReadMinRows):
            min_rows = limit.min_rows
        elif limit is None:
            max_rows = self.options.max_rows_per_batch
        end = offset_json(stream, next_end(stream, seq, self._now_ms(), max_rows=max_rows, min_rows=min_rows))
        if not ADMISSION_CONTROL:
            self.last_end = end
        return end

    def getDefaultReadLimit(self) -> ReadLimit:
        if self.options.max_rows_per_batch is not None:
            return ReadMaxRows(self.options.max_rows_per_batch)
        return ReadAllAvailable()

    def prepareForTriggerAvailableNow(self) -> None:
        # Freeze "now": later latestOffset calls reach this point and stop, so the query ends.
        self.frozen_ms = now_ms(self.clock)

    def partitions(self, start: dict[str, Any], end: dict[str, Any]) -> Sequence[RangePartition]:
        stream, first = from_offset(start)
        end_stream, last = from_offset(end)
        if end_stream != stream:
            # Spark does not checkpoint the initial offset: replaying a query's first batch after a crash
            # asks a new reader for it, which picks a new default start time. The end offset is in the
            # checkpoint, so its stream is the query's.
            same_but_start = replace(stream, start_ms=end_stream.start_ms) == end_stream
            if self.options.start_ms is not None or first != 0 or not same_but_start:
                raise ValueError(f"offsets of different streams: {start} .. {end}")
            stream = end_stream
        if not ADMISSION_CONTROL:
            self.last_end = end
        return self._partitions(self.options, split_range(stream, first, last, self.options.num_partitions))

    def commit(self, end: dict[str, Any]) -> None:
        # Nothing to release: positions are recomputed, never buffered.
        if not ADMISSION_CONTROL:
            self.last_end = end
