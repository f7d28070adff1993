"""The events a client received, as parallel numpy arrays: what the report's vectorised measures work on.

`ColumnBuilder.add` takes one parsed NDJSON event (a dict) at a time, so the report parses each line once
and both its realism figures and its ML figures read the same columns. Ids become dense integers: a
session or an order is numbered in order of first appearance, a user `u00012345` is 12345 and a product
`p0023251` is 23251 (the catalog's index, so catalog facts join by indexing).
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np

from .workers.model import CATEGORIES, INTERACTION_TYPES, SEGMENTS

NO_ORDER = -1  # `order_id` null or absent
KIND_NUMBER = {k: i for i, k in enumerate(INTERACTION_TYPES)}
CATEGORY_NUMBER = {c: i for i, c in enumerate(CATEGORIES)}
SEGMENT_NUMBER = {s: i for i, s in enumerate(SEGMENTS)}


@dataclass(frozen=True)
class EventColumns:
    """One row per event, in stream order (which is event-time order)."""

    time_ms: np.ndarray  # int64
    session: np.ndarray  # int64, dense session number
    session_event_index: np.ndarray  # int64, the event's 1-based place in its session
    user: np.ndarray  # int64, the user id's number
    kind: np.ndarray  # int8, index into INTERACTION_TYPES
    product: np.ndarray  # int64, the product id's number (catalog index)
    category: np.ndarray  # int8, index into CATEGORIES
    price_cents: np.ndarray  # int64
    duration_s: np.ndarray  # int64, a view's duration, 0 for other events
    order: np.ndarray  # int64, dense order number, NO_ORDER when the event has no order_id
    segment: np.ndarray  # int8, index into SEGMENTS
    session_ids: tuple[str, ...] = ()  # per session number, its session_id

    def __len__(self) -> int:
        return int(self.time_ms.size)


# The fields the columns hold, fetched from a parsed event by one C call.
_FIELDS = ("timestamp", "session_id", "session_event_index", "user_id", "product_id", "price", "duration",
           "interaction_type", "category", "user_segment")
_GET = itemgetter(*_FIELDS)


class ColumnBuilder:
    """Collects parsed events; `columns()` turns them into arrays.

    `add` runs once per event (2M times for a 2M-event report), so it only keeps a tuple of the event's
    fields: a Python-level assignment per field and event cost more than parsing the JSON. The conversion
    to arrays happens once, in `columns()`.
    """

    def __init__(self) -> None:
        self._rows: list[tuple[Any, ...]] = []
        self._orders: list[tuple[int, str]] = []  # (event number, order_id) of the events that carry one

    def add(self, e: dict[str, Any]) -> None:
        self._rows.append(_GET(e))
        order = e.get("order_id")  # not in every version of the events: absent means no order id
        if order is not None:
            self._orders.append((len(self._rows) - 1, order))

    def columns(self) -> EventColumns:
        n = len(self._rows)
        if n == 0:
            empty = np.zeros(0, dtype=np.int64)
            return EventColumns(empty, empty, empty, empty, empty.astype(np.int8), empty, empty.astype(np.int8),
                                empty, empty, empty, empty.astype(np.int8))
        (stamps, sessions, index, users, products, prices, durations, kinds, categories,
         segments) = zip(*self._rows, strict=True)
        # The timestamp is ISO-8601 with a trailing Z, which numpy's datetime64 does not take.
        time_ms = np.array([s[:-1] for s in stamps], dtype="datetime64[ms]").astype(np.int64)
        session_number: dict[str, int] = {}
        order_number: dict[str, int] = {}
        order = np.full(n, NO_ORDER, dtype=np.int64)
        for i, order_id in self._orders:
            order[i] = order_number.setdefault(order_id, len(order_number))
        return EventColumns(
            time_ms=time_ms,
            session=np.array([session_number.setdefault(s, len(session_number)) for s in sessions], dtype=np.int64),
            session_event_index=np.array(index, dtype=np.int64),
            user=np.array([int(u[1:]) for u in users], dtype=np.int64),
            product=np.array([int(p[1:]) for p in products], dtype=np.int64),
            kind=np.array([KIND_NUMBER[k] for k in kinds], dtype=np.int8),
            category=np.array([CATEGORY_NUMBER[c] for c in categories], dtype=np.int8),
            segment=np.array([SEGMENT_NUMBER[s] for s in segments], dtype=np.int8),
            price_cents=np.round(np.array(prices, dtype=np.float64) * 100).astype(np.int64),
            # None (an event without a duration) becomes NaN in a float array, then 0.
            duration_s=np.nan_to_num(np.array(durations, dtype=np.float64)).astype(np.int64),
            order=order, session_ids=tuple(session_number))
