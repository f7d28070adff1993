"""Query parameters: parsed and checked once, or rejected with a 400 that says what is allowed."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web

from ..workers.arrow import arrow_available
from .config import ServerConfig

MAX_SEED = 2**63 - 1
MAX_OFFSET = 2**48 - 1  # positions are unique below 2**48 (see workers/encode.py ids)
MAX_UNPACED_COUNT = 10_000_000  # one seeded request without `rate`
MAX_TIMESTAMP_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last time ISO-8601's 4 digits can hold
# The default start of a seeded stream's event time, so that a replay without `start` is identical.
DEFAULT_SEEDED_START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
FORMATS = ("ndjson", "sse")
ARROW = "arrow"  # an Arrow IPC stream: seeded interactions only, and only where pyarrow is installed


class InvalidParameter(web.HTTPBadRequest):
    """A 400 whose JSON body names the parameter, what was given and what is allowed."""

    def __init__(self, name: str, given: str | None, allowed: str, message: str | None = None) -> None:
        body = {
            "error": "invalid_parameter",
            "parameter": name,
            "given": given,
            "allowed": allowed,
            "message": message or f"{name} must be {allowed}, got {given!r}",
        }
        super().__init__(text=json.dumps(body), content_type="application/json")


def _int(query: Mapping[str, str], name: str, low: int, high: int, default: int | None = None) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    allowed = f"an integer from {low} to {high}"
    try:
        value = int(raw.strip())
    except ValueError:
        raise InvalidParameter(name, raw, allowed) from None
    if not low <= value <= high:
        raise InvalidParameter(name, raw, allowed)
    return value


def _reject_unknown(query: Mapping[str, str], known: tuple[str, ...]) -> None:
    for name in query:
        if name not in known:
            raise InvalidParameter(
                name, query.get(name), f"one of the parameters {', '.join(known)}", f"unknown parameter {name!r}"
            )


def _format(query: Mapping[str, str], accept: str, seeded: bool | None = None) -> str:
    """`format`; `seeded` is None for endpoints without Arrow, else whether the interaction stream is seeded."""
    raw = query.get("format")
    if raw is None:
        return "sse" if "text/event-stream" in accept else "ndjson"
    allowed = "one of " + ", ".join(FORMATS)
    if raw == ARROW and seeded is not None:
        if not seeded:
            # Arrow is built from the generator's arrays, which only seeded streams have: live rows arrive
            # from the rings as finished NDJSON bytes.
            raise InvalidParameter("format", raw, f"{allowed} (arrow only with seed=)",
                                   f"format=arrow is for seeded streams only (give seed=); live streams are {allowed}")
        if not arrow_available():
            raise InvalidParameter("format", raw, allowed,
                                   f"format=arrow needs pyarrow on the server (pip install '.[spark]'); use {allowed}")
        return raw
    if raw not in FORMATS:
        raise InvalidParameter("format", raw, allowed + (", or arrow with seed=" if seeded is not None else ""))
    return raw


def _start_ms(query: Mapping[str, str]) -> int | None:
    """`start`: epoch milliseconds or an ISO-8601 time (a time without zone is UTC)."""
    raw = query.get("start")
    if raw is None or raw == "":
        return None
    allowed = "epoch milliseconds (0 to 253402300799999) or an ISO-8601 time such as 2026-01-01T00:00:00Z"
    try:
        value = int(raw)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
        except ValueError:
            raise InvalidParameter("start", raw, allowed) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        value = math.floor(parsed.timestamp() * 1000)
    if not 0 <= value <= MAX_TIMESTAMP_MS:
        raise InvalidParameter("start", raw, allowed)
    return value


@dataclass(frozen=True)
class StreamRequest:
    """What a client asked of /stream/interactions or /stream/users."""

    rate_eps: int | None  # None: as fast as the client reads (seeded reads only)
    duration_s: int | None  # None: until `count`
    count: int | None
    format: str
    seed: int | None = None  # set: a private, replayable stream
    shard: int = 0
    offset: int = 0
    start_ms: int | None = None  # event time of position 0 (seeded streams)
    event_rate_eps: int = 1000  # event-time spacing of a seeded stream

    @property
    def limit(self) -> int | None:
        """How many events the stream delivers at most (None: unbounded until its duration ends)."""
        if self.duration_s is None or self.rate_eps is None:
            return self.count
        by_time = self.duration_s * self.rate_eps
        return by_time if self.count is None else min(self.count, by_time)


INTERACTION_PARAMS = ("rate", "duration", "count", "format", "seed", "shard", "offset", "start", "event_rate")
USER_PARAMS = ("rate", "duration", "count", "format", "offset")


def parse_interactions(query: Mapping[str, str], accept: str, config: ServerConfig) -> StreamRequest:
    _reject_unknown(query, INTERACTION_PARAMS)
    seed = _int(query, "seed", 0, MAX_SEED)
    if seed is None:
        for name in ("shard", "offset", "start", "event_rate"):
            if name in query:
                raise InvalidParameter(
                    name, query[name], "only with seed=", f"{name} needs seed= (a replayable stream)"
                )
    rate = _int(query, "rate", 1, config.max_rate_eps)
    count = _int(query, "count", 1, MAX_UNPACED_COUNT if seed is not None else 2**62)
    duration = _int(query, "duration", 1, config.max_duration_s)
    fmt = _format(query, accept, seeded=seed is not None)
    if seed is None or rate is not None or count is None:
        # A paced stream: the original's defaults, and a count must be deliverable in the longest duration.
        rate = rate if rate is not None else config.default_rate_eps
        if count is None and duration is None:
            duration = config.default_duration_s
        _check_count_fits(count, duration, rate, config)
    request = StreamRequest(rate_eps=rate, duration_s=duration, count=count, format=fmt)
    if seed is None:
        return request
    event_rate = _int(query, "event_rate", 1, 10_000_000, default=rate or config.default_rate_eps)
    assert event_rate is not None
    start_ms = _start_ms(query)
    seeded = StreamRequest(
        rate_eps=rate,
        duration_s=duration,
        count=count,
        format=fmt,
        seed=seed,
        shard=_int(query, "shard", 0, 65535, default=0) or 0,
        offset=_int(query, "offset", 0, MAX_OFFSET, default=0) or 0,
        start_ms=DEFAULT_SEEDED_START_MS if start_ms is None else start_ms,
        event_rate_eps=event_rate,
    )
    _check_positions_fit(seeded)
    return seeded


def _check_positions_fit(request: StreamRequest) -> None:
    """Every position asked for must have a unique id (below 2**48) and an event time before year 10000."""
    assert request.start_ms is not None and request.limit is not None
    end = request.offset + request.limit  # one past the last position the stream can deliver
    if end > MAX_OFFSET + 1:
        raise InvalidParameter(
            "offset", str(request.offset), f"offset + events requested <= 2^48 ({MAX_OFFSET + 1})",
            f"positions end at 2^48: offset={request.offset} leaves room for {MAX_OFFSET + 1 - request.offset} events",
        )
    last_ms = request.start_ms + (end - 1) * 1000 // request.event_rate_eps
    if last_ms > MAX_TIMESTAMP_MS:
        raise InvalidParameter(
            "offset", str(request.offset), "positions whose event time (start + seq / event_rate) is before 10000",
            f"the event time of position {end - 1} would be past year 9999: lower offset or start, "
            "or raise event_rate",
        )


def parse_users(query: Mapping[str, str], accept: str, config: ServerConfig) -> StreamRequest:
    _reject_unknown(query, USER_PARAMS)
    rate = _int(query, "rate", 1, config.max_user_rate_eps, default=min(config.default_rate_eps,
                                                                        config.max_user_rate_eps))
    assert rate is not None
    count = _int(query, "count", 1, 2**62)
    duration = _int(query, "duration", 1, config.max_duration_s)
    if count is None and duration is None:
        duration = config.default_duration_s
    _check_count_fits(count, duration, rate, config)
    offset = _int(query, "offset", 0, config.model.max_users - 1, default=0) or 0
    return StreamRequest(rate_eps=rate, duration_s=duration, count=count, format=_format(query, accept), offset=offset)


def _check_count_fits(count: int | None, duration: int | None, rate: int, config: ServerConfig) -> None:
    if count is not None and duration is None and count > rate * config.max_duration_s:
        raise InvalidParameter(
            "count",
            str(count),
            f"at most rate x {config.max_duration_s} s = {rate * config.max_duration_s} at rate={rate}",
            f"count={count} cannot be delivered within {config.max_duration_s} s at rate={rate}: "
            f"raise rate, lower count, or give a duration",
        )
