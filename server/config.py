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
    max_connections: int = 0  # MAX_CONNECTIONS; 0: the file-descriptor soft limit less headroom (limits.py)
    header_timeout_s: float = 5.0  # HEADER_TIMEOUT: a connection's time to send a complete request head
    auth_token: str | None = None  # AUTH_TOKEN: every route but /health then needs it as a bearer token
    private_metrics: bool = False  # PRIVATE_METRICS: /metrics without worker PIDs and per-stream details
    max_seeded_streams: int = 8  # MAX_SEEDED_STREAMS: concurrent unpaced seeded streams
    max_seeds: int = 4  # MAX_SEEDS: seed generators held at once (in use or being built), 25-60 MB each

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
    serve.add_argument("--grace", type=float, help="seconds open streams get at SIGTERM [GRACE, default 10]")
    serve.add_argument("--max-connections", type=int,
                       help="open connections before new requests get 503 [MAX_CONNECTIONS, default: fd limit]")
    serve.add_argument("--header-timeout", type=float,
                       help="seconds a connection has to send a request head [HEADER_TIMEOUT, default 5]")
    serve.add_argument("--private-metrics", action="store_const", const=True,
                       help="/metrics without worker PIDs and per-stream details [PRIVATE_METRICS=1]")
    serve.add_argument("--max-seeded-streams", type=int, help="concurrent unpaced seeded streams [MAX_SEEDED_STREAMS, "
                       "default 8]")
    serve.add_argument("--max-seeds", type=int, help="seeds held at once [MAX_SEEDS, default 4]")
    # No --auth-token: a flag shows in `ps` and /proc/PID/cmdline; AUTH_TOKEN is an environment variable only.

    report = commands.add_parser("report", help="print the realism report: targets beside measured figures")
    report.add_argument("--events", type=int, default=1_000_000, help="events to generate (default 1000000)")
    report.add_argument("--seed", type=int, default=7)
    report.add_argument("--rate", type=int, default=1000, help="stream rate to translate positions into time")
    report.add_argument("--max-users", type=int, default=100_000)
    report.add_argument("--max-products", type=int, default=50_000)
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
    def pick_float(flag: float | None, default: float, name: str) -> float:
        if flag is not None:
            return flag
        try:
            return float(env[name]) if env.get(name) else default
        except ValueError:
            raise SystemExit(f"environment variable {name} must be a number, got {env[name]!r}") from None

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
        grace_s=pick_float(getattr(args, "grace", None), defaults.grace_s, "GRACE"),
        max_connections=pick(getattr(args, "max_connections", None), defaults.max_connections, "MAX_CONNECTIONS"),
        header_timeout_s=pick_float(getattr(args, "header_timeout", None), defaults.header_timeout_s, "HEADER_TIMEOUT"),
        auth_token=env.get("AUTH_TOKEN") or None,
        private_metrics=bool(getattr(args, "private_metrics", None))
        or env.get("PRIVATE_METRICS", "").lower() in ("1", "true", "yes"),
        max_seeded_streams=pick(getattr(args, "max_seeded_streams", None), defaults.max_seeded_streams,
                                "MAX_SEEDED_STREAMS"),
        max_seeds=pick(getattr(args, "max_seeds", None), defaults.max_seeds, "MAX_SEEDS"),
    )


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)
