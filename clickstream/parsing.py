"""The one strict integer parser for text users give us (query parameters, settings, times)."""

from __future__ import annotations

import re

_ASCII_DIGITS = re.compile(r"[0-9]+")


def ascii_int(text: str, max_digits: int = 19) -> int | None:
    """The integer `text` spells in ASCII digits only (no sign, space, underscore or other script's digits),
    or None. `max_digits` bounds the work int() does on hostile input."""
    if len(text) > max_digits or not _ASCII_DIGITS.fullmatch(text):
        return None
    return int(text)
