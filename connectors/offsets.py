"""Offsets and offset ranges of a stream read by Spark: the arithmetic behind the Spark source.

Spark reads a seeded stream (`clickstream.definition`: seed, shard, start time, funnel) at `rowsPerSecond`: at wall
time `now` the positions `0 .. latest - 1` are available, with
`latest = floor((now_ms - start_ms) * rowsPerSecond / 1000)`. Their timestamps are the store's own event
time (which runs at rowsPerSecond / the store's events per second times the wall clock). Nothing is asked
of a server to plan a batch: the latest position is computed from the stream and the clock, which is what
lets Spark build as many reader instances as it likes (driver, executors, after a restart) and have them agree.

An offset is the stream plus the next position to read, as flat JSON:
`{"seed": 7, "shard": 0, "start_ms": 1700000000000, "rate": 1000, "funnel": "mix", "seq": 12000}`. Spark
writes it to the checkpoint, so a restarted query keeps the start time it first chose even when the user
let it default to "now". Nothing here imports pyspark or pyarrow, so it is unit-testable on its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ..definition import StreamDefinition, check_range
from ..limits import DEFAULT_FUNNEL, DEFAULT_SEED, MAX_SEED, MAX_SHARD, MAX_UNPACED_COUNT, parse_funnel
from ..times import parse_time_ms
from ..workers.markets import parse_store_countries
from ..workers.model import ModelConfig

# The site's defaults come from the model itself, so the connector and the server cannot drift apart.
DEFAULT_PARTITIONS: Final[int] = 2
DEFAULT_MAX_USERS: Final[int] = ModelConfig().max_users
DEFAULT_MAX_PRODUCTS: Final[int] = ModelConfig().max_products
# Rows per HTTP request / per render call, and so per Arrow batch handed to Spark. ~600 B a row puts a
# request at ~30 MB: big enough that per-request costs vanish, small enough to bound an executor's memory.
DEFAULT_ROWS_PER_REQUEST: Final[int] = 50_000
DEFAULT_TIMEOUT_S: Final[float] = 60.0

DEFAULT_ROWS_PER_SECOND: Final[int] = 1000
MAX_ROWS_PER_SECOND: Final[int] = 10_000_000

Clock = Callable[[], float]


@dataclass(frozen=True)
class SparkStream:
    """A seeded stream and the rate Spark reads it at: what a checkpointed offset names."""

    seed: int
    shard: int
    start_ms: int
    rows_per_second: int
    funnel: str = DEFAULT_FUNNEL

    def __post_init__(self) -> None:
        self.definition  # noqa: B018  (validates seed, shard, start and funnel)
        check_range("rowsPerSecond", self.rows_per_second, 1, MAX_ROWS_PER_SECOND)

    @property
    def definition(self) -> StreamDefinition:
        return StreamDefinition(self.seed, self.shard, self.start_ms, self.funnel)

    def latest(self, wall_ms: int) -> int:
        """Number of positions available at `wall_ms` (0 before the start)."""
        # Integer arithmetic: the same answer on every machine, however far from the start.
        return max(0, (wall_ms - self.start_ms) * self.rows_per_second // 1000)


def now_ms(clock: Clock = time.time) -> int:
    """Wall time in whole milliseconds since the epoch."""
    return int(clock() * 1000)


def offset_json(stream: SparkStream, seq: int) -> dict[str, Any]:
    """The JSON offset of position `seq`; keys in one fixed order, since Spark compares the text."""
    return {
        "seed": stream.seed,
        "shard": stream.shard,
        "start_ms": stream.start_ms,
        "rate": stream.rows_per_second,
        "funnel": stream.funnel,
        "seq": seq,
    }


def from_offset(offset: Mapping[str, Any]) -> tuple[SparkStream, int]:
    """The stream and next position stored in an offset.

    Offsets checkpointed before streams had a funnel lack the key: they were read with the default one.
    """
    try:
        stream = SparkStream(
            int(offset["seed"]),
            int(offset["shard"]),
            int(offset["start_ms"]),
            int(offset["rate"]),
            str(offset.get("funnel", DEFAULT_FUNNEL)),
        )
        return stream, int(offset["seq"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"not a clickstream offset: {dict(offset)!r} ({e})") from None


@dataclass(frozen=True)
class SourceOptions:
    """The data source's options, parsed and validated once (Spark passes every value as a string).

    `start_ms` and the rest of the stream are None where the user did not set them: a restarted
    query then takes them from its checkpointed offset instead of complaining about a mismatch.
    """

    url: str | None = None
    seed: int | None = None
    shard: int | None = None
    rows_per_second: int | None = None
    start_ms: int | None = None
    funnel: str | None = None
    num_partitions: int = DEFAULT_PARTITIONS
    max_users: int = DEFAULT_MAX_USERS
    max_products: int = DEFAULT_MAX_PRODUCTS
    # Empty: every market. Executor mode only: a server generates from its own STORE_COUNTRIES.
    store_countries: tuple[str, ...] = ()
    rows_per_request: int = DEFAULT_ROWS_PER_REQUEST
    max_rows_per_batch: int | None = None
    starting_offset: str = "earliest"
    timeout_s: float = DEFAULT_TIMEOUT_S
    # Batch reads only.
    offset: int = 0
    count: int | None = None

    @classmethod
    def parse(cls, options: Mapping[str, str]) -> SourceOptions:
        """Validate Spark's option strings (keys are case-insensitive, as everywhere in Spark)."""
        o = {str(k).lower(): str(v) for k, v in options.items()}
        known = {
            "url", "seed", "shard", "rowspersecond", "starttime", "funnel", "numpartitions", "maxusers",
            "maxproducts", "storecountries", "rowsperrequest", "maxrowsperbatch", "startingoffset",
            "timeoutseconds", "offset", "count", "path",
        }  # fmt: skip
        unknown = sorted(set(o) - known)
        if unknown:
            raise ValueError(f"unknown clickstream option(s) {unknown}; known: {sorted(known - {'path'})}")

        def integer(key: str, low: int, high: int | None = None) -> int | None:
            if key not in o:
                return None
            try:
                value = int(o[key])
            except ValueError:
                raise ValueError(f"option {key} must be an integer, got {o[key]!r}") from None
            if value < low or (high is not None and value > high):
                raise ValueError(f"option {key} must be in {low}..{high if high is not None else ''}, got {value}")
            return value

        starting = o.get("startingoffset", "earliest").strip().lower()
        if starting not in ("earliest", "latest") and not starting.isdigit():
            raise ValueError(f"option startingOffset must be earliest, latest or a position, got {starting!r}")
        timeout_s = float(o.get("timeoutseconds", DEFAULT_TIMEOUT_S))
        if timeout_s <= 0:
            raise ValueError(f"option timeoutSeconds must be positive, got {timeout_s}")
        url = o.get("url") or None
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError(f"option url must start with http:// or https://, got {url!r}")
        if url is not None and "storecountries" in o:
            raise ValueError(
                "option storeCountries applies when Spark generates the events (no url); "
                "a server uses its own STORE_COUNTRIES"
            )
        return cls(
            url=url.rstrip("/") if url else None,
            seed=integer("seed", 0, MAX_SEED),
            shard=integer("shard", 0, MAX_SHARD),
            rows_per_second=integer("rowspersecond", 1, MAX_ROWS_PER_SECOND),
            start_ms=_start_time(o["starttime"]) if "starttime" in o else None,
            funnel=_funnel(o["funnel"]) if "funnel" in o else None,
            num_partitions=integer("numpartitions", 1) or DEFAULT_PARTITIONS,
            max_users=integer("maxusers", 1) or DEFAULT_MAX_USERS,
            max_products=integer("maxproducts", 1) or DEFAULT_MAX_PRODUCTS,
            store_countries=_store_countries(o["storecountries"]) if "storecountries" in o else (),
            rows_per_request=integer("rowsperrequest", 1, MAX_UNPACED_COUNT) or DEFAULT_ROWS_PER_REQUEST,
            max_rows_per_batch=integer("maxrowsperbatch", 1),
            starting_offset=starting,
            timeout_s=timeout_s,
            offset=integer("offset", 0) or 0,
            count=integer("count", 0),
        )

    def stream(self, default_start_ms: int) -> SparkStream:
        """The stream these options name; an unset startTime becomes `default_start_ms`."""
        return SparkStream(
            seed=DEFAULT_SEED if self.seed is None else self.seed,
            shard=0 if self.shard is None else self.shard,
            start_ms=default_start_ms if self.start_ms is None else self.start_ms,
            rows_per_second=DEFAULT_ROWS_PER_SECOND if self.rows_per_second is None else self.rows_per_second,
            funnel=DEFAULT_FUNNEL if self.funnel is None else self.funnel,
        )

    def check_matches(self, checkpointed: SparkStream) -> None:
        """Refuse to continue a checkpointed stream under options that name a different stream.

        Carrying on would silently mix two streams' events (or event times) in one query's output.
        """
        explicit = {
            "seed": (self.seed, checkpointed.seed),
            "shard": (self.shard, checkpointed.shard),
            "rowsPerSecond": (self.rows_per_second, checkpointed.rows_per_second),
            "startTime": (self.start_ms, checkpointed.start_ms),
            "funnel": (self.funnel, checkpointed.funnel),
        }
        for name, (given, stored) in explicit.items():
            if given is not None and given != stored:
                raise ValueError(
                    f"option {name}={given} differs from the checkpointed stream's {name}={stored}; "
                    "use a new checkpoint location to read a different stream"
                )


def _start_time(text: str) -> int:
    try:
        return parse_time_ms(text)
    except ValueError as e:
        raise ValueError(f"option startTime must be {e}, got {text!r}") from None


def _funnel(text: str) -> str:
    try:
        return parse_funnel(text)
    except ValueError as e:
        raise ValueError(f"option funnel must be {e}, got {text!r}") from None


def _store_countries(text: str) -> tuple[str, ...]:
    try:
        return parse_store_countries(text)
    except ValueError as e:
        raise ValueError(f"option storeCountries must be {e}, got {text!r}") from None


@dataclass(frozen=True)
class OffsetRange:
    """Positions [first_seq, first_seq + count) of one stream: what one Spark task reads."""

    stream: SparkStream
    first_seq: int
    count: int

    @property
    def end_seq(self) -> int:
        return self.first_seq + self.count


def split_range(stream: SparkStream, start: int, end: int, parts: int) -> list[OffsetRange]:
    """[start, end) as up to `parts` contiguous ranges of near-equal size (none empty)."""
    total = max(0, end - start)
    parts = max(1, min(parts, total))
    base, extra = divmod(total, parts)
    ranges: list[OffsetRange] = []
    first = start
    for i in range(parts):
        count = base + (1 if i < extra else 0)
        if count:
            ranges.append(OffsetRange(stream, first, count))
        first += count
    return ranges


def sub_ranges(first_seq: int, count: int, step: int) -> list[tuple[int, int]]:
    """(first_seq, count) pieces of at most `step` positions: one request / render call each."""
    return [(s, min(step, first_seq + count - s)) for s in range(first_seq, first_seq + count, step)]


def next_end(
    stream: SparkStream,
    start_seq: int,
    wall_ms: int,
    max_rows: int | None = None,
    min_rows: int | None = None,
) -> int:
    """End position of the next micro-batch: everything available, capped by an admission limit.

    Never before `start_seq` (a clock stepped back must not rewind the stream). With `min_rows`, a
    batch smaller than that is not admitted yet (the end stays `start_seq`).
    """
    end = max(start_seq, stream.latest(wall_ms))
    if max_rows is not None:
        end = min(end, start_seq + max_rows)
    if min_rows is not None and end - start_seq < min_rows:
        return start_seq
    return end
