"""`clickstream serve` and `clickstream report`."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from clickstream.server.config import config_from, parse

    args = parse(argv)
    if args.command == "report":
        from clickstream.report import run_report

        return run_report(args)
    try:
        config = config_from(args)
    except ValueError as exc:
        print(f"clickstream: {exc}", file=sys.stderr)
        return 2
    from clickstream.server.main import run

    return run(config)


if __name__ == "__main__":
    sys.exit(main())
