"""The server's settings: one frozen object, built once from the command line and the environment.

Every option is a flag and an environment variable (flags win). Defaults suit a PaaS: bind 0.0.0.0:$PORT,
workers from $WEB_CONCURRENCY (Heroku sets it) or the number of cores. No other module reads the environment.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..workers.model import ModelConfig


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
        if not 1 <= self.workers <= 64:
            raise ValueError(f"workers must be in 1..64, got {self.workers}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {self.port}")
        if not 1 <= self.default_rate_eps <= self.max_rate_eps:
            raise ValueError(f"default rate must be in 1..{self.max_rate_eps}, got {self.default_rate_eps}")
        if self.ring_bytes < 1 << 20:
            raise ValueError("ring_bytes must be at least 1 MiB")


def _env_int(env: Mapping[str, str], *names: str) -> int | None:
    for name in names:
        value = env.get(name)
        if value not in (None, ""):
            try:
                return int(value)
            except ValueError:
                raise SystemExit(f"environment variable {name} must be an integer, got {value!r}") from None
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clickstream", description="Realistic e-commerce clickstream over HTTP")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="start the HTTP server (every flag is also an environment variable)")
    serve.add_argument("--host", help="bind address [HOST, default 0.0.0.0]")
    serve.add_argument("--port", type=int, help="port, 0 for any free port [PORT, default 8000]")
    serve.add_argument("--workers", type=int, help="generator processes [WORKERS or WEB_CONCURRENCY, default: cores]")
    serve.add_argument("--seed", type=int, help="seed of the simulated site [SEED, default 7]")
    serve.add_argument("--max-users", type=int, help="users in the catalog [MAX_USERS, default 100000]")
    serve.add_argument("--max-products", type=int, help="products in the catalog [MAX_PRODUCTS, default 50000]")
    serve.add_argument("--rate", type=int, help="default events/s of a stream [GENERATION_RATE, default 1000]")
    serve.add_argument("--max-rate", type=int, help="highest rate a client may ask for [MAX_RATE, default 50000]")
    serve.add_argument("--socket-port", type=int, help="also serve NDJSON on a raw TCP port [SOCKET_PORT]")
    serve.add_argument("--socket-rate", type=int, help="events/s per socket client [SOCKET_RATE, default 1000]")
    serve.add_argument("--log-level", help="debug, info, warning [LOG_LEVEL, default info]")

    report = commands.add_parser(
        "report", help="print the realism report: targets beside measured figures, failing rows marked FAIL "
        "(exit code 1 when a row fails)")
    report.add_argument("--events", type=int, default=1_000_000,
                        help="events to generate and measure, from the stream's first position (default 1000000)")
    report.add_argument("--seed", type=int, default=7, help="the store's seed (default 7)")
    report.add_argument("--shard", type=int, default=0, help="the stream's shard, 0-65535 (default 0)")
    report.add_argument("--start", type=int, default=None,
                        help="event time of the first position, epoch ms (default 1767225600000 = 2026-01-01Z)")
    report.add_argument("--max-users", type=int, default=100_000, help="users in the store (default 100000)")
    report.add_argument("--max-products", type=int, default=50_000, help="products in the store (default 50000)")
    report.add_argument("--progress", action="store_true",
                        help="show progress on stderr even when it is not a terminal")
    return parser


def config_from(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> ServerConfig:
    """Flags first, then environment variables, then defaults."""
    env = os.environ if env is None else env

    def pick(flag: int | None, default: int, *names: str) -> int:
        if flag is not None:
            return flag
        value = _env_int(env, *names)
        return default if value is None else value

    model_defaults, defaults = ModelConfig(), ServerConfig()
    model = ModelConfig(
        seed=pick(args.seed, model_defaults.seed, "SEED"),
        max_users=pick(args.max_users, model_defaults.max_users, "MAX_USERS"),
        max_products=pick(args.max_products, model_defaults.max_products, "MAX_PRODUCTS"),
    )
    socket_port = args.socket_port if args.socket_port is not None else _env_int(env, "SOCKET_PORT")
    return ServerConfig(
        host=args.host or env.get("HOST") or defaults.host,
        port=pick(args.port, defaults.port, "PORT"),
        workers=pick(args.workers, os.cpu_count() or 1, "WORKERS", "WEB_CONCURRENCY"),
        model=model,
        default_rate_eps=pick(args.rate, defaults.default_rate_eps, "GENERATION_RATE"),
        max_rate_eps=pick(args.max_rate, defaults.max_rate_eps, "MAX_RATE"),
        socket_port=socket_port,
        socket_rate_eps=pick(args.socket_rate, defaults.socket_rate_eps, "SOCKET_RATE"),
        log_level=(args.log_level or env.get("LOG_LEVEL") or defaults.log_level).lower(),
    )


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)
