"""Query parameters: one table declares them, and everything else is driven by it.

Each `Param` says its name, the routes that take it, how its text is parsed, its real range, its default
and its help. The table drives parsing, the refusal of unknown and repeated parameters on every route,
the `/` document and the README's parameter table (`markdown_table`), the way gunicorn's settings drive
both its command line and its docs: adding a parameter touches this table only.

Parsing is strict: integers are ASCII digits only (no sign, space, underscore or other script's digits),
a parameter given twice or given empty is refused, and every refusal is a 400 whose JSON body names the
parameter, what was given and the range that is really enforced.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from ..definition import StreamDefinition
from ..limits import DEFAULT_START_MS, FUNNELS, MAX_POSITION, MAX_SEED, MAX_SHARD, MAX_UNPACED_COUNT
from ..parsing import ascii_int
from ..times import TIME_FORMS, iso_ms, parse_time_ms
from ..workers.arrow import arrow_available
from .config import ServerConfig

# Route names (aiohttp route names, set in app.py) that take parameters.
INTERACTIONS, USERS, METRICS = "interactions", "users", "metrics"
TEXT_FORMATS = ("ndjson", "sse")
STORE_CLOCK, WALL_CLOCK = "store", "wall"
CLOCKS = (STORE_CLOCK, WALL_CLOCK)
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


Bound = Callable[[ServerConfig, Mapping[str, Any]], int]


def _fixed(value: int) -> Bound:
    return lambda config, values: value


_NO_BOUND = _fixed(0)  # parameters that are not integers


@dataclass(frozen=True)
class Param:
    """One query parameter. `high` may depend on the config and on parameters parsed before it."""

    name: str
    routes: tuple[str, ...]
    help: str
    kind: str = "integer"  # integer, time or choice
    low: int = 0
    high: Bound = _NO_BOUND
    choices: tuple[str, ...] = ()
    seeded_only: bool = False  # only with seed= (a replayable stream)
    doc_range: str | None = None  # the range as the docs state it, where it depends on other parameters

    def allowed(self, config: ServerConfig, values: Mapping[str, Any]) -> str:
        if self.kind == "integer":
            return f"an integer from {self.low} to {self.high(config, values)}"
        if self.kind == "time":
            return TIME_FORMS
        return "one of " + ", ".join(self.choices)

    def parse(self, raw: str, config: ServerConfig, values: Mapping[str, Any]) -> Any:
        """The value of `raw`, or InvalidParameter naming this parameter and its range."""
        try:
            if self.kind == "time":
                return parse_time_ms(raw)
            if self.kind == "choice":
                if raw not in self.choices:
                    raise ValueError(raw)
                return raw
            value = ascii_int(raw)
            if value is None or not self.low <= value <= self.high(config, values):
                raise ValueError(raw)
            return value
        except ValueError:
            raise InvalidParameter(self.name, raw, self.allowed(config, values)) from None


def _max_count(config: ServerConfig, values: Mapping[str, Any]) -> int:
    """The real bound of `count`: what the longest stream delivers at its rate, or one unpaced request."""
    if "duration" in values:
        return MAX_POSITION
    if "rate" in values:
        return int(values["rate"]) * config.max_duration_s
    if "seed" in values:
        return MAX_UNPACED_COUNT
    return config.default_rate_eps * config.max_duration_s


def _max_user_count(config: ServerConfig, values: Mapping[str, Any]) -> int:
    rate = values.get("rate", config.default_user_rate_eps)
    return MAX_POSITION if "duration" in values else rate * config.max_duration_s


STREAMS = (INTERACTIONS, USERS)
PARAMS: tuple[Param, ...] = (
    Param("seed", (INTERACTIONS,), "a private, replayable stream of the store with this seed", high=_fixed(MAX_SEED)),
    Param("rate", (INTERACTIONS,), "events per second delivered; with seed=, unpaced (as fast as the client "
          "reads) when omitted", low=1, high=lambda c, v: c.max_rate_eps),
    Param("rate", (USERS,), "users per second delivered", low=1, high=lambda c, v: c.max_user_rate_eps),
    Param("duration", STREAMS, "seconds the stream lasts; default 60 when count is not given", low=1,
          high=lambda c, v: c.max_duration_s),
    Param("count", (INTERACTIONS,), "exactly this many events, then the stream ends", low=1, high=_max_count,
          doc_range="an integer from 1 to rate x {c.max_duration_s} without duration, "
          f"to {MAX_UNPACED_COUNT:,} unpaced"),
    Param("count", (USERS,), "exactly this many users, then the stream ends", low=1, high=_max_user_count,
          doc_range="an integer from 1 to rate x {c.max_duration_s} without duration"),
    Param("format", (INTERACTIONS,), "ndjson (default), sse (also chosen by Accept: text/event-stream), or "
          "arrow with seed= (an Arrow IPC stream, where the server has pyarrow)", kind="choice",
          choices=(*TEXT_FORMATS, ARROW)),
    Param("format", (USERS,), "ndjson (default) or sse", kind="choice", choices=TEXT_FORMATS),
    Param("format", (METRICS,), "json (default) or prometheus (also chosen by Accept: text/plain)", kind="choice",
          choices=("json", "prometheus")),
    Param("shard", (INTERACTIONS,), "an independent stream of the same store; default 0", high=_fixed(MAX_SHARD),
          seeded_only=True),
    Param("offset", (INTERACTIONS,), "first position of the stream; default 0", high=_fixed(MAX_POSITION),
          seeded_only=True),
    Param("offset", (USERS,), "first user id; default 0", high=lambda c, v: c.model.max_users - 1),
    Param("start", (INTERACTIONS,), "when the store's stream begins (event time; the day of the week and hour "
          f"shape its activity); default {iso_ms(DEFAULT_START_MS / 1000)}",
          kind="time", seeded_only=True),
    Param("clock", (INTERACTIONS,), "store (default): every timestamp is the store's event time, coherent "
          "within sessions; wall: live events stamped as they leave (seeded streams keep store time)",
          kind="choice", choices=CLOCKS),
    Param("funnel", (INTERACTIONS,), "the sessions' funnel: mix (each segment's interaction mix table) or "
          "retail (a real shop's, 96.7 % views); default the site's FUNNEL. A live stream serves the site's own",
          kind="choice", choices=FUNNELS),
    Param("truth", (USERS,), "true adds each user's ground truth (activity, churn time, segment) under "
          "`truth`; default false", kind="choice", choices=("false", "true")),
)


def route_params(route: str) -> dict[str, Param]:
    return {p.name: p for p in PARAMS if route in p.routes}


def parse_query(route: str, query: MultiMapping[str], config: ServerConfig) -> dict[str, Any]:
    """The route's parameters that were given, parsed; a 400 for an unknown, repeated or invalid one."""
    table = route_params(route)
    for name in query:
        if name not in table:
            allowed = f"one of the parameters {', '.join(table)}" if table else "no parameters"
            raise InvalidParameter(name, query.get(name), allowed, f"unknown parameter {name!r}: this route takes "
                                   f"{allowed.removeprefix('one of the parameters ')}")
        if len(query.getall(name)) > 1:
            raise InvalidParameter(name, ",".join(query.getall(name)), "given once",
                                   f"parameter {name!r} is given more than once")
    values: dict[str, Any] = {}
    for name, param in table.items():
        if name in query:
            values[name] = param.parse(query[name], config, values)
    if "seed" not in values:
        for name in values:
            if table[name].seeded_only:
                raise InvalidParameter(name, query[name], "only with seed=",
                                       f"{name} needs seed= (a replayable stream)")
    return values


@dataclass(frozen=True)
class StreamRequest:
    """What a client asked of /stream/interactions or /stream/users."""

    rate_eps: int | None  # None: as fast as the client reads (seeded streams only)
    duration_s: int | None  # None: until `count`
    count: int | None
    format: str
    offset: int = 0  # first position (seeded interactions) or first user id (users)
    definition: StreamDefinition | None = None  # set: a private, replayable stream
    clock: str = STORE_CLOCK  # whose time the timestamps are (live interactions: WALL_CLOCK on request)
    truth: bool = False  # users: with their ground truth

    @property
    def end_position(self) -> int:
        """One past the last position a seeded stream can deliver (it is bounded by count, or rate x duration)."""
        assert self.limit is not None
        return self.offset + self.limit

    @property
    def limit(self) -> int | None:
        """How many events the stream delivers at most (None: unbounded until its duration ends)."""
        if self.duration_s is None or self.rate_eps is None:
            return self.count
        by_time = self.duration_s * self.rate_eps
        return by_time if self.count is None else min(self.count, by_time)


def parse_interactions(values: Mapping[str, Any], accept: str, config: ServerConfig) -> StreamRequest:
    seed = values.get("seed")
    rate = values.get("rate", None if seed is not None else config.default_rate_eps)
    count, duration = values.get("count"), values.get("duration")
    if count is None and duration is None:
        duration = config.default_duration_s
    fmt = _stream_format(values, accept, seeded=seed is not None)
    clock = values.get("clock", STORE_CLOCK)
    funnel = values.get("funnel", config.model.funnel)
    if seed is None:
        if funnel != config.model.funnel:
            raise InvalidParameter("funnel", funnel, f"{config.model.funnel} (this site's FUNNEL) without seed=",
                                   f"the live site follows funnel {config.model.funnel} (its FUNNEL setting); "
                                   f"a seeded stream (seed=) can follow {funnel}")
        return StreamRequest(rate, duration, count, fmt, clock=clock)
    if clock == WALL_CLOCK:
        raise InvalidParameter("clock", clock, "store with seed=", "clock=wall is for the live site: a seeded "
                               "stream keeps the store's event time, or it could not be replayed byte for byte")
    if rate is None and count is None:
        count = MAX_UNPACED_COUNT  # an unpaced stream ends at its duration or after this many events
    definition = StreamDefinition(seed, values.get("shard", 0), values.get("start", DEFAULT_START_MS), funnel)
    request = StreamRequest(rate, duration, count, fmt, values.get("offset", 0), definition)
    _check_positions_fit(request)
    return request


def parse_users(values: Mapping[str, Any], accept: str, config: ServerConfig) -> StreamRequest:
    count, duration = values.get("count"), values.get("duration")
    if count is None and duration is None:
        duration = config.default_duration_s
    rate = values.get("rate", config.default_user_rate_eps)
    return StreamRequest(rate, duration, count, _stream_format(values, accept), values.get("offset", 0),
                         truth=values.get("truth") == "true")


def _stream_format(values: Mapping[str, Any], accept: str, seeded: bool | None = None) -> str:
    """`format`, or the one Accept asks for; Arrow only for seeded interactions on a server with pyarrow."""
    fmt: str = values.get("format") or ("sse" if "text/event-stream" in accept else "ndjson")
    if fmt != ARROW:
        return fmt
    text = "one of " + ", ".join(TEXT_FORMATS)
    if not seeded:
        # Arrow is built from the generator's arrays, which only seeded streams have: live rows arrive
        # from the rings as finished NDJSON bytes.
        raise InvalidParameter("format", fmt, f"{text} (arrow only with seed=)",
                               f"format=arrow is for seeded streams only (give seed=); live streams are {text}")
    if not arrow_available():
        raise InvalidParameter("format", fmt, text,
                               f"format=arrow needs pyarrow on the server (pip install '.[spark]'); use {text}")
    return fmt


def _check_positions_fit(request: StreamRequest) -> None:
    """Every position asked for must have a unique id (below 2**48). Whether they lie within the stream's
    horizon depends on the store: the seeded source checks that before the headers (`past_horizon`)."""
    end = request.end_position
    if end > MAX_POSITION + 1:
        raise InvalidParameter(
            "offset", str(request.offset), f"offset + events requested <= 2^48 ({MAX_POSITION + 1})",
            f"positions end at 2^48: offset={request.offset} leaves room for {MAX_POSITION + 1 - request.offset} "
            "events",
        )


def store_ended(start_ms: int, end_ms: int) -> InvalidParameter:
    """The 400 for a seeded stream that would start after the store's user ids have run out."""
    allowed = f"a time before {iso_ms((end_ms - 1) / 1000)} (this store's user ids run out, or the year 9999 ends)"
    return InvalidParameter("start", iso_ms(start_ms / 1000), allowed, f"start must be {allowed}")


def past_horizon(request: StreamRequest, positions: int) -> InvalidParameter:
    """The 400 for a seeded request whose last position lies past the stream's horizon (SEEDED_HORIZON_MS)."""
    return InvalidParameter(
        "offset", str(request.offset), f"offset + events requested <= {positions} for this store and start "
        "(the positions of the 100 years of event time after start, within the year 9999 and the store's life)",
        f"position {request.end_position - 1} lies past the stream's horizon: lower offset or count",
    )


def describe(config: ServerConfig) -> dict[str, dict[str, str]]:
    """Every route's parameters as `{route: {name: "allowed; help"}}`, for the `/` document."""
    routes: dict[str, dict[str, str]] = {}
    for param in PARAMS:
        for route in param.routes:
            routes.setdefault(route, {})[param.name] = _describe(param, config)
    return routes


def _describe(param: Param, config: ServerConfig) -> str:
    allowed = param.doc_range.format(c=config) if param.doc_range else param.allowed(config, {})
    only = " (with seed=)" if param.seeded_only else ""
    return f"{allowed}{only}; {param.help}"


def markdown_table(config: ServerConfig) -> str:
    """The README's parameter table, written from the table above (`python -m clickstream.docs` rewrites it)."""
    lines = ["| route | parameter | allowed | meaning |", "|---|---|---|---|"]
    paths = {INTERACTIONS: "/stream/interactions", USERS: "/stream/users", METRICS: "/metrics"}
    for route, path in paths.items():
        for param in route_params(route).values():
            allowed, meaning = _describe(param, config).split("; ", 1)
            lines.append(f"| `{path}` | `{param.name}` | {allowed} | {meaning} |")
    return "\n".join(lines)
