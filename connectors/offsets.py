"""Offsets and offset ranges of a stream (`clickstream.definition`): the arithmetic behind the Spark source.

A stream is (seed, shard, start time, event rate): Spark's `rowsPerSecond` is the event rate. Event k of a
stream has event time `start_ms + floor(k * 1000 / rate)`, so at wall time `now` the events
`0 .. latest - 1` exist, with `latest = floor((now_ms - start_ms) * rate / 1000)`. Nothing is asked of a
server to plan a batch: the latest position is computed from the definition and the clock, which is what
lets Spark build as many reader instances as it likes (driver, executors, after a restart) and have them agree.

An offset is the definition plus the next position to read, as flat JSON:
`{"seed": 7, "shard": 0, "start_ms": 1700000000000, "rate": 1000, "seq": 12000}`. Spark writes it to the
checkpoint, so a restarted query keeps the start time it first chose even when the user let it default
to "now". Nothing here imports pyspark or pyarrow, so it is unit-testable on its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ..definition import StreamDefinition
from ..limits import (
    DEFAULT_EVENT_RATE_EPS,
    DEFAULT_SEED,
    MAX_EVENT_RATE_EPS,
    MAX_SEED,
    MAX_SHARD,
    MAX_UNPACED_COUNT,
)
from ..times import parse_time_ms
from ..workers.model import ModelConfig

# The site's defaults come from the model itself, so the connector and the server cannot drift apart.
DEFAULT_PARTITIONS: Final[int] = 2
DEFAULT_MAX_USERS: Final[int] = ModelConfig().max_users
DEFAULT_MAX_PRODUCTS: Final[int] = ModelConfig().max_products
# Rows per HTTP request / per render call, and so per Arrow batch handed to Spark. ~600 B a row puts a
# request at ~30 MB: big enough that per-request costs vanish, small enough to bound an executor's memory.
DEFAULT_ROWS_PER_REQUEST: Final[int] = 50_000
DEFAULT_TIMEOUT_S: Final[float] = 60.0

Clock = Callable[[], float]


def now_ms(clock: Clock = time.time) -> int:
    """Wall time in whole milliseconds since the epoch."""
    return int(clock() * 1000)


def offset_json(definition: StreamDefinition, seq: int) -> dict[str, Any]:
    """The JSON offset of position `seq`; keys in one fixed order, since Spark compares the text."""
    return {
        "seed": definition.seed,
        "shard": definition.shard,
        "start_ms": definition.start_ms,
        "rate": definition.event_rate_eps,
        "seq": seq,
    }


def from_offset(offset: Mapping[str, Any]) -> tuple[StreamDefinition, int]:
    """The definition and next position stored in an offset."""
    try:
        definition = StreamDefinition(
            int(offset["seed"]), int(offset["shard"]), int(offset["start_ms"]), int(offset["rate"])
        )
        return definition, int(offset["seq"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"not a clickstream offset: {dict(offset)!r} ({e})") from None


@dataclass(frozen=True)
class SourceOptions:
    """The data source's options, parsed and validated once (Spark passes every value as a string).

    `start_ms` and the rest of the definition are None where the user did not set them: a restarted
    query then takes them from its checkpointed offset instead of complaining about a mismatch.
    """

    url: str | None = None
    seed: int | None = None
    shard: int | None = None
    event_rate_eps: int | None = None  # rowsPerSecond
    start_ms: int | None = None
    num_partitions: int = DEFAULT_PARTITIONS
    max_users: int = DEFAULT_MAX_USERS
    max_products: int = DEFAULT_MAX_PRODUCTS
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
            "url", "seed", "shard", "rowspersecond", "starttime", "numpartitions", "maxusers", "maxproducts",
            "rowsperrequest", "maxrowsperbatch", "startingoffset", "timeoutseconds", "offset", "count", "path",
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
        return cls(
            url=url.rstrip("/") if url else None,
            seed=integer("seed", 0, MAX_SEED),
            shard=integer("shard", 0, MAX_SHARD),
            event_rate_eps=integer("rowspersecond", 1, MAX_EVENT_RATE_EPS),
            start_ms=_start_time(o["starttime"]) if "starttime" in o else None,
            num_partitions=integer("numpartitions", 1) or DEFAULT_PARTITIONS,
            max_users=integer("maxusers", 1) or DEFAULT_MAX_USERS,
            max_products=integer("maxproducts", 1) or DEFAULT_MAX_PRODUCTS,
            rows_per_request=integer("rowsperrequest", 1, MAX_UNPACED_COUNT) or DEFAULT_ROWS_PER_REQUEST,
            max_rows_per_batch=integer("maxrowsperbatch", 1),
            starting_offset=starting,
            timeout_s=timeout_s,
            offset=integer("offset", 0) or 0,
            count=integer("count", 0),
        )

    def definition(self, default_start_ms: int) -> StreamDefinition:
        """The stream these options name; an unset startTime becomes `default_start_ms`."""
        return StreamDefinition(
            seed=DEFAULT_SEED if self.seed is None else self.seed,
            shard=0 if self.shard is None else self.shard,
            start_ms=default_start_ms if self.start_ms is None else self.start_ms,
            event_rate_eps=DEFAULT_EVENT_RATE_EPS if self.event_rate_eps is None else self.event_rate_eps,
        )

    def check_matches(self, checkpointed: StreamDefinition) -> None:
        """Refuse to continue a checkpointed stream under options that name a different stream.

        Carrying on would silently mix two streams' events (or event times) in one query's output.
        """
        explicit = {
            "seed": (self.seed, checkpointed.seed),
            "shard": (self.shard, checkpointed.shard),
            "rowsPerSecond": (self.event_rate_eps, checkpointed.event_rate_eps),
            "startTime": (self.start_ms, checkpointed.start_ms),
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


@dataclass(frozen=True)
class OffsetRange:
    """Positions [first_seq, first_seq + count) of one stream: what one Spark task reads."""

    definition: StreamDefinition
    first_seq: int
    count: int

    @property
    def end_seq(self) -> int:
        return self.first_seq + self.count


def split_range(definition: StreamDefinition, start: int, end: int, parts: int) -> list[OffsetRange]:
    """[start, end) as up to `parts` contiguous ranges of near-equal size (none empty)."""
    total = max(0, end - start)
    parts = max(1, min(parts, total))
    base, extra = divmod(total, parts)
    ranges: list[OffsetRange] = []
    first = start
    for i in range(parts):
        count = base + (1 if i < extra else 0)
        if count:
            ranges.append(OffsetRange(definition, first, count))
        first += count
    return ranges


def sub_ranges(first_seq: int, count: int, step: int) -> list[tuple[int, int]]:
    """(first_seq, count) pieces of at most `step` positions: one request / render call each."""
    return [(s, min(step, first_seq + count - s)) for s in range(first_seq, first_seq + count, step)]


def next_end(
    definition: StreamDefinition,
    start_seq: int,
    wall_ms: int,
    max_rows: int | None = None,
    min_rows: int | None = None,
) -> int:
    """End position of the next micro-batch: everything available, capped by an admission limit.

    Never before `start_seq` (a clock stepped back must not rewind the stream). With `min_rows`, a
    batch smaller than that is not admitted yet (the end stays `start_seq`).
    """
    end = max(start_seq, definition.latest(wall_ms))
    if max_rows is not None:
        end = min(end, start_seq + max_rows)
    if min_rows is not None and end - start_seq < min_rows:
        return start_seq
    return end
