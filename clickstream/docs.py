"""The README's generated blocks, written from the code: `python -m clickstream.docs` rewrites them.

A block sits between `<!-- generated: NAME -->` and `<!-- end: NAME -->`; the test suite fails when a
block differs from what the code writes now, so the README cannot drift from the parameters, the settings
or the report it documents.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def _params() -> str:
    from .server.config import ServerConfig
    from .server.params import markdown_table

    return markdown_table(ServerConfig())


def _settings() -> str:
    from .server.config import markdown_table

    return markdown_table()


# The README's report sample: `clickstream report --events 1000000 --seed 7` (about 45 days of the store).
REPORT_EVENTS = 1_000_000


def _report() -> str:
    from .report import format_report, measure
    from .workers.generator import EventGenerator
    from .workers.model import ModelConfig

    config = ModelConfig()
    return "```\n" + format_report(measure(EventGenerator(config), REPORT_EVENTS), None, config) + "\n```"


# The README's sample event: the first purchase at or after this position of the default seeded stream
# (`/stream/interactions?seed=7&offset=1000000&count=...`), so it shows an order id.
EVENT_POSITION = 1_000_000


def _event() -> str:
    from .workers.generator import EventGenerator
    from .workers.model import ModelConfig

    generator = EventGenerator(ModelConfig())
    lines = generator.render(EVENT_POSITION, 1000).tobytes().decode().splitlines()
    return "```json\n" + next(line for line in lines if '"purchase"' in line) + "\n```"


BLOCKS: dict[str, Callable[[], str]] = {"params": _params, "settings": _settings, "report": _report,
                                        "event": _event}


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- generated: {name} -->\n)(.*?)(<!-- end: {name} -->)", re.S)


def rendered(name: str) -> str:
    """What block `name` should hold, as the code writes it now."""
    return BLOCKS[name]().rstrip("\n") + "\n"


def block(text: str, name: str) -> str | None:
    """The current content of block `name` in `text` (None if it has none)."""
    match = _pattern(name).search(text)
    return match.group(2) if match else None


def rewrite(text: str, names: tuple[str, ...] | None = None) -> str:
    for name in names or tuple(BLOCKS):
        content = rendered(name)
        text = _pattern(name).sub(lambda match: match.group(1) + content + match.group(3), text)  # noqa: B023
    return text


def main() -> int:
    text = README.read_text()
    updated = rewrite(text)
    if updated != text:
        README.write_text(updated)
        print(f"rewrote {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
