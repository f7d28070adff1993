"""Event times as text and back: the one parser of times given by users, the one ISO form we write."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from .limits import MAX_TIMESTAMP_MS
from .parsing import ascii_int


def parse_time_ms(text: str) -> int:
    """Milliseconds since the epoch from epoch milliseconds (ASCII digits) or an ISO-8601 time.

    A time without a zone is UTC; fractions of a millisecond round down. Raises ValueError with the
    allowed forms for anything else, or for a time outside 1970-01-01 .. 9999-12-31.
    """
    value = text.strip()
    ms = ascii_int(value, max_digits=15)
    if ms is None:
        try:
            # "+" in a query string arrives as a space: "2026-01-01T00:00:00 01:00" means +01:00.
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "+"))
        except ValueError:
            raise ValueError(TIME_FORMS) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        ms = math.floor(parsed.timestamp() * 1000)
    if not 0 <= ms <= MAX_TIMESTAMP_MS:
        raise ValueError(TIME_FORMS)
    return ms


TIME_FORMS = (
    f"epoch milliseconds (0 to {MAX_TIMESTAMP_MS}) or an ISO-8601 time such as 2026-01-01T00:00:00Z "
    "(no zone means UTC)"
)


def iso_ms(epoch_s: float) -> str:
    """The form every timestamp we write takes: `2026-01-01T00:00:00.000Z`."""
    moment = datetime.fromtimestamp(math.floor(epoch_s * 1000) / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
