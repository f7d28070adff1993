"""The contract's limits and defaults, one definition each.

The server's parameter table, the stream definition, the generator, the Spark source and the report all
read them from here, so a bound named in an error message is the bound that is enforced.
"""

from __future__ import annotations

from typing import Final

MAX_SEED: Final[int] = 2**63 - 1
MAX_SHARD: Final[int] = 2**16 - 1
# Positions of a stream are unique below 2**48: interaction and session ids are built from them
# (workers/encode.py), so a position past it could repeat an id.
MAX_POSITION: Final[int] = 2**48 - 1
# 9999-12-31T23:59:59.999Z: the last time ISO-8601's four-digit year can hold.
MAX_TIMESTAMP_MS: Final[int] = 253_402_300_799_999
# Event time of a seeded stream's first position when the request names none (2026-01-01T00:00:00Z),
# so that a replay without `start` is identical.
DEFAULT_START_MS: Final[int] = 1_767_225_600_000
DEFAULT_SEED: Final[int] = 7
# The sessions' funnels (workers/funnel.py): "mix" follows each segment's interaction mix table,
# "retail" public figures of a real shop's log.
FUNNELS: Final[tuple[str, ...]] = ("mix", "retail")
DEFAULT_FUNNEL: Final[str] = "mix"


def parse_funnel(text: str) -> str:
    """A funnel's name from a setting or an option (case and spaces ignored); the ValueError says what is
    allowed, for the caller to put beside the setting's name."""
    funnel = text.strip().lower()
    if funnel not in FUNNELS:
        raise ValueError("one of " + ", ".join(FUNNELS))
    return funnel


# A seeded stream's positions cover this much event time from its start (about 855 million positions
# of the default store), and never past the year 9999.
MS_PER_YEAR: Final[int] = 365 * 86_400_000
SEEDED_HORIZON_MS: Final[int] = 100 * MS_PER_YEAR
# One unpaced seeded request (no `rate`) delivers at most this many events.
MAX_UNPACED_COUNT: Final[int] = 10_000_000
