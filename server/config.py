"""The server's settings: one frozen object, built once from the command line and the environment.

`SETTINGS` declares every option once (field, flag, environment variables, parser, help); it drives the
`serve` command line, the reading of the environment and the README's configuration table. Flags win over
the environment, the environment over defaults. Defaults suit a PaaS: bind 0.0.0.0:$PORT, workers from
$WEB_CONCURRENCY (Heroku sets it) or the number of cores. Every value is checked once, in `ServerConfig`,
and a bad one is a `ConfigError` (exit code 2, one line, no traceback). No other module reads the environment.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from ..definition import check_range
from ..errors import ConfigError
from ..limits import parse_funnel
from ..parsing import ascii_int
from ..workers.markets import parse_store_countries
from ..workers.model import ModelConfig

LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class ServerConfig:
    host: str = "0.0.0.0"
    port: int = 8000
    workers: int = 2
    model: ModelConfig = field(default_factory=ModelConfig)
    default_rate_eps: int = 1000  # GENERATION_RATE: rate of a stream that names none
    max_rate_eps: int = 50_000  # ceiling of `rate` for /stream/interactions
    max_user_rate_eps: int = 5_000
    max_duration_s: int = 300
    default_duration_s: int = 60
    ring_bytes: int = 16 << 20  # per worker: ~28,000 rows, 0.5 s of a 50,000/s stream
    tick_s: float = 0.02  # pacing tick: a batch per tick per connection (10 ms cost ~20 % more CPU per event)
    max_burst_s: float = 0.5  # a stream that falls behind catches up at most this much, then slips
    grace_s: float = 10.0  # SIGTERM: time open streams get to end on a whole line
    worker_ready_timeout_s: float = 60.0
    max_restarts: int = 5  # within restart_window_s; more is a crash loop and halts the server
    restart_window_s: float = 60.0
    socket_port: int | None = None  # raw TCP NDJSON feed for Spark's socket source and nc
    socket_rate_eps: int = 1000
    log_level: str = "info"
    max_connections: int = 0  # 0: the file-descriptor soft limit less headroom (limits.py)
    header_timeout_s: float = 5.0  # a connection's time to send a complete request head
    auth_token: str | None = None  # every route but /health then needs it as a bearer token
    private_metrics: bool = False  # /metrics without worker PIDs and per-stream details
    max_seeded_streams: int = 8  # concurrent unpaced seeded streams
    max_seeds: int = 4  # seed generators held at once (in use or being built), 25-60 MB each
    instance: str = ""  # which replica this is: replicas serve distinct shards of the live site
    instances: int = 1  # replicas sharing the store's users (each then needs its index as INSTANCE)

    def __post_init__(self) -> None:
        try:
            check_range("workers", self.workers, 1, 64)
            check_range("port", self.port, 0, 65535)
            check_range("max rate", self.max_rate_eps, 1, 10_000_000)
            check_range("default rate", self.default_rate_eps, 1, self.max_rate_eps)
            check_range("socket rate", self.socket_rate_eps, 1, self.max_rate_eps)
            if self.socket_port is not None:
                check_range("socket port", self.socket_port, 0, 65535)
            check_range("ring bytes", self.ring_bytes, 1 << 20, 1 << 34)
            check_range("max connections", self.max_connections, 0, 1_000_000)
            check_range("max seeded streams", self.max_seeded_streams, 1, 1024)
            check_range("max seeds", self.max_seeds, 1, 64)
            check_range("instances", self.instances, 1, 64)
            self.replica_index  # noqa: B018  (validates INSTANCE against INSTANCES)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if not 0 < self.grace_s <= 3600 or not 0 < self.header_timeout_s <= 3600:
            raise ConfigError(f"grace and header timeout must be in (0, 3600] s, got {self.grace_s}, "
                              f"{self.header_timeout_s}")
        if self.log_level not in LOG_LEVELS:
            raise ConfigError(f"log level must be one of {', '.join(LOG_LEVELS)}, got {self.log_level!r}")

    @property
    def replica_index(self) -> int:
        """This replica's index among `instances` (0 when there is one): INSTANCE as a number, or the number
        of Heroku's `web.N` less one. Replicas with indices split the store's users between them."""
        if self.instances == 1:
            return 0
        match = re.fullmatch(r"(?:[a-z]+\.)?(\d{1,4})", self.instance.strip())
        index = -1 if match is None else int(match[1]) - (1 if "." in self.instance else 0)
        if not 0 <= index < self.instances:
            raise ValueError(f"with INSTANCES={self.instances}, INSTANCE must be this replica's index "
                             f"0..{self.instances - 1} (or Heroku's web.1..web.{self.instances}), got "
                             f"{self.instance!r}")
        return index

    @property
    def default_user_rate_eps(self) -> int:
        return min(self.default_rate_eps, self.max_user_rate_eps)

    @property
    def logging_level(self) -> int:
        return int(logging.getLevelName(self.log_level.upper()))


@dataclass(frozen=True)
class Setting:
    """One option of `clickstream serve`: a flag, its environment variables and the config field it sets."""

    field: str  # a ServerConfig field, or "model.<field>" for the store's ModelConfig
    flag: str | None  # None: environment only (a secret: flags show in `ps`)
    env: tuple[str, ...]
    help: str
    parse: Callable[[str], Any] = int
    switch: bool = False  # a flag without a value (the environment variable takes 1/true/yes or 0/false/no)


def _integer(text: str) -> int:
    value = ascii_int(text.strip(), max_digits=12)
    if value is None:
        raise ValueError("an integer")
    return value


def _seconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError("a number of seconds") from None


def _boolean(text: str) -> bool:
    words = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
    if text.strip().lower() not in words:
        raise ValueError("1, true, yes, 0, false or no")
    return words[text.strip().lower()]


def _log_level(text: str) -> str:
    if text.lower() not in LOG_LEVELS:
        raise ValueError("one of " + ", ".join(LOG_LEVELS))
    return text.lower()


SETTINGS: tuple[Setting, ...] = (
    Setting("host", "--host", ("HOST",), "bind address (default 0.0.0.0: every interface)", str),
    Setting("port", "--port", ("PORT",), "port, 0 for any free port (default 8000)", _integer),
    Setting("workers", "--workers", ("WORKERS", "WEB_CONCURRENCY"), "generator processes (default: cores)", _integer),
    Setting("model.seed", "--seed", ("SEED",), "seed of the simulated store (default 7)", _integer),
    Setting("model.max_users", "--max-users", ("MAX_USERS",), "users in the store (default 100000)", _integer),
    Setting("model.max_products", "--max-products", ("MAX_PRODUCTS",), "products in the store (default 50000)",
            _integer),
    Setting("model.funnel", "--funnel", ("FUNNEL",), "the sessions' funnel: mix (each segment's interaction mix "
            "table, the default) or retail (a real shop's: 96.7 % views)", parse_funnel),
    Setting("model.store_countries", "--store-countries", ("STORE_COUNTRIES",), "ISO codes of the countries the "
            "store sells in, comma-separated, e.g. US,GB,DE (default: the 37 biggest e-commerce markets)",
            parse_store_countries),
    Setting("default_rate_eps", "--rate", ("GENERATION_RATE",), "events/s of a stream that names no rate "
            "(default 1000)", _integer),
    Setting("max_rate_eps", "--max-rate", ("MAX_RATE",), "highest rate a client may ask for (default 50000)",
            _integer),
    Setting("socket_port", "--socket-port", ("SOCKET_PORT",), "also serve NDJSON on a raw TCP port (default: off)",
            _integer),
    Setting("socket_rate_eps", "--socket-rate", ("SOCKET_RATE",), "events/s per socket client (default 1000)",
            _integer),
    Setting("log_level", "--log-level", ("LOG_LEVEL",), "debug, info, warning or error (default info)", _log_level),
    Setting("grace_s", "--grace", ("GRACE",), "seconds open streams get to end at SIGTERM (default 10)", _seconds),
    Setting("max_connections", "--max-connections", ("MAX_CONNECTIONS",), "open connections before new "
            "streams get 503 (default: the file-descriptor limit less headroom)", _integer),
    Setting("header_timeout_s", "--header-timeout", ("HEADER_TIMEOUT",), "seconds a connection has to send "
            "a request head (default 5)", _seconds),
    Setting("auth_token", None, ("AUTH_TOKEN",), "when set, every route but /health needs "
            "`Authorization: Bearer <token>` (environment only: a flag would show in ps)", str),
    Setting("private_metrics", "--private-metrics", ("PRIVATE_METRICS",), "/metrics without worker PIDs and "
            "per-stream details", _boolean, switch=True),
    Setting("max_seeded_streams", "--max-seeded-streams", ("MAX_SEEDED_STREAMS",), "concurrent unpaced "
            "seeded streams before 503 (default 8)", _integer),
    Setting("max_seeds", "--max-seeds", ("MAX_SEEDS",), "seed generators held at once before 503 (default 4)",
            _integer),
    Setting("instance", "--instance", ("INSTANCE", "RAILWAY_REPLICA_ID", "DYNO"), "this replica's name: "
            "replicas serve distinct shards of the live site (default: the platform's replica id)", str),
    Setting("instances", "--instances", ("INSTANCES",), "replicas that split the store's users, each with its "
            "index as INSTANCE, so no user is in two replicas' sessions (default 1: every replica has them all)",
            _integer),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `serve` flags, one per setting; the help names the environment variables too."""
    for setting in SETTINGS:
        if setting.flag is None:
            continue
        more: dict[str, Any] = {"action": "store_const", "const": "1"} if setting.switch else {
            "metavar": setting.env[0]}
        parser.add_argument(setting.flag, dest=_dest(setting), help=f"{setting.help} [env {' or '.join(setting.env)}]",
                            **more)


def _dest(setting: Setting) -> str:
    return (setting.flag or setting.field).removeprefix("--").replace("-", "_")


def config_from(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> ServerConfig:
    """Flags first, then environment variables, then defaults. Raises ConfigError naming the bad one."""
    env = os.environ if env is None else env
    top: dict[str, Any] = {"workers": os.cpu_count() or 1}
    model: dict[str, Any] = {}
    for setting in SETTINGS:
        found = _raw_value(setting, args, env)
        if found is None:
            continue
        source, raw = found
        try:
            value = setting.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{source} must be {exc}, got {raw!r}") from None
        name = setting.field.removeprefix("model.")
        (model if setting.field.startswith("model.") else top)[name] = value
    try:
        store = replace(ModelConfig(), **model)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    known = {f.name for f in fields(ServerConfig)}
    return ServerConfig(model=store, **{k: v for k, v in top.items() if k in known})


def _raw_value(setting: Setting, args: argparse.Namespace, env: Mapping[str, str]) -> tuple[str, str] | None:
    """(where it came from, its text) for a setting that was given, else None."""
    flag = getattr(args, _dest(setting), None) if setting.flag else None
    if flag is not None and setting.flag is not None:
        return setting.flag, str(flag)
    for name in setting.env:
        if env.get(name, "") != "":
            return f"environment variable {name}", env[name]
    return None


def markdown_table() -> str:
    """The README's configuration table, written from SETTINGS (`python -m clickstream.docs` rewrites it)."""
    lines = ["| flag | environment | meaning |", "|---|---|---|"]
    lines += [f"| {f'`{s.flag}`' if s.flag else '-'} | {', '.join(f'`{e}`' for e in s.env)} | {s.help} |"
              for s in SETTINGS]
    return "\n".join(lines)
