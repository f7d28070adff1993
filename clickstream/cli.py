"""The `clickstream` command: `serve`, `report`, `--version`. Exit codes are in `clickstream.errors`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .errors import EXIT_CONFIG, ConfigError
from .limits import DEFAULT_SEED, DEFAULT_START_MS
from .times import iso_ms, parse_time_ms


def build_parser() -> argparse.ArgumentParser:
    from .server.config import add_arguments

    parser = argparse.ArgumentParser(prog="clickstream", description="Realistic e-commerce clickstream over HTTP")
    parser.add_argument("--version", action="version", version=f"clickstream {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="start the HTTP server (every flag is also an environment variable)")
    add_arguments(serve)

    report = commands.add_parser(
        "report", help="print the realism report and its section For ML use: targets beside measured figures, "
        "failing rows marked FAIL (exit code 1 when a row fails)")
    report.add_argument("--events", type=int, default=1_000_000,
                        help="events to generate and measure, from the stream's first position (default 1000000)")
    report.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"the store's seed (default {DEFAULT_SEED})")
    report.add_argument("--shard", type=int, default=0, help="the stream's shard, 0-65535 (default 0)")
    report.add_argument("--start", type=parse_time_ms, default=DEFAULT_START_MS,
                        help=f"event time of the first position, epoch ms or ISO-8601 (default "
                        f"{iso_ms(DEFAULT_START_MS / 1000)})")
    report.add_argument("--max-users", type=int, default=100_000, help="users in the store (default 100000)")
    report.add_argument("--max-products", type=int, default=50_000, help="products in the store (default 50000)")
    report.add_argument("--funnel", default=None,
                        help="the model's funnel, e.g. retail (default: the model's own); the retail rows of the "
                        "section For ML use are judged only with --funnel retail")
    report.add_argument("--progress", action="store_true",
                        help="show progress on stderr even when it is not a terminal")
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
