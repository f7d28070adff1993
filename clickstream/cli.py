"""The `clickstream` command: `serve`, `report`, `--version`. Exit codes are in `clickstream.errors`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .errors import EXIT_CONFIG, ConfigError


def build_parser() -> argparse.ArgumentParser:
    from .server.config import add_arguments

    parser = argparse.ArgumentParser(prog="clickstream", description="Realistic e-commerce clickstream over HTTP")
    parser.add_argument("--version", action="version", version=f"clickstream {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="start the HTTP server (every flag is also an environment variable)")
    add_arguments(serve)

    report = commands.add_parser("report", help="print the realism report: targets beside measured figures")
    report.add_argument("--events", type=int, default=1_000_000, help="events to generate (default 1000000)")
    report.add_argument("--seed", type=int, default=7, help="seed of the simulated store (default 7)")
    report.add_argument("--rate", type=int, default=1000,
                        help="events per second of event time, to turn positions into time (default 1000)")
    report.add_argument("--max-users", type=int, default=100_000, help="users in the store (default 100000)")
    report.add_argument("--max-products", type=int, default=50_000, help="products in the store (default 50000)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "report":
        from .report import run_report

        return run_report(args)
    from .server.config import config_from

    try:
        config = config_from(args)
    except ConfigError as exc:
        print(f"clickstream: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    from .server.main import run

    return run(config)


if __name__ == "__main__":
    sys.exit(main())
