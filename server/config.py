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
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if self.log_level not in LOG_LEVELS:
            raise ConfigError(f"log level must be one of {', '.join(LOG_LEVELS)}, got {self.log_level!r}")

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
    flag: str
    env: tuple[str, ...]
    help: str
    parse: Callable[[str], Any] = int


_INTEGER = re.compile(r"[0-9]{1,12}")


def _integer(text: str) -> int:
    if not _INTEGER.fullmatch(text.strip()):
        raise ValueError("an integer")
    return int(text)


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
    Setting("default_rate_eps", "--rate", ("GENERATION_RATE",), "events/s of a stream that names no rate "
            "(default 1000)", _integer),
    Setting("max_rate_eps", "--max-rate", ("MAX_RATE",), "highest rate a client may ask for (default 50000)",
            _integer),
    Setting("socket_port", "--socket-port", ("SOCKET_PORT",), "also serve NDJSON on a raw TCP port (default: off)",
            _integer),
    Setting("socket_rate_eps", "--socket-rate", ("SOCKET_RATE",), "events/s per socket client (default 1000)",
            _integer),
    Setting("log_level", "--log-level", ("LOG_LEVEL",), "debug, info, warning or error (default info)", _log_level),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `serve` flags, one per setting; the help names the environment variables too."""
    for setting in SETTINGS:
        parser.add_argument(setting.flag, dest=_dest(setting), metavar=setting.env[0],
                            help=f"{setting.help} [env {' or '.join(setting.env)}]")


def _dest(setting: Setting) -> str:
    return setting.flag.removeprefix("--").replace("-", "_")


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
    flag = getattr(args, _dest(setting), None)
    if flag is not None:
        return setting.flag, str(flag)
    for name in setting.env:
        if env.get(name, "") != "":
            return f"environment variable {name}", env[name]
    return None


def markdown_table() -> str:
    """The README's configuration table, written from SETTINGS (`python -m clickstream.docs` rewrites it)."""
    lines = ["| flag | environment | meaning |", "|---|---|---|"]
    lines += [f"| `{s.flag}` | {', '.join(f'`{e}`' for e in s.env)} | {s.help} |" for s in SETTINGS]
    return "\n".join(lines)
