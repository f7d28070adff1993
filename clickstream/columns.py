"""The events a client received, as parallel numpy arrays: what the report's vectorised measures work on.

`ColumnBuilder.add` takes one parsed NDJSON event (a dict) at a time, so the report parses each line once
and both its realism figures and its ML figures read the same columns. Ids become dense integers: a
session or an order is numbered in order of first appearance, a user `u00012345` is 12345 and a product
`p0023251` is 23251 (the catalog's index, so catalog facts join by indexing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .workers.model import CATEGORIES, INTERACTION_TYPES

NO_ORDER = -1  # `order_id` null or absent
KIND_NUMBER = {k: i for i, k in enumerate(INTERACTION_TYPES)}
CATEGORY_NUMBER = {c: i for i, c in enumerate(CATEGORIES)}


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

    def __len__(self) -> int:
        return int(self.time_ms.size)


class ColumnBuilder:
    """Fills preallocated arrays from parsed events; `columns()` returns the filled part."""

    def __init__(self, capacity: int) -> None:
        self._stamps: list[str] = []  # converted at once: numpy parses a list far faster than one at a time
        self._ints = {name: np.zeros(capacity, dtype=np.int64) for name in (
            "session", "session_event_index", "user", "product", "price_cents", "duration_s", "order")}
        self._small = {name: np.zeros(capacity, dtype=np.int8) for name in ("kind", "category")}
        self._sessions: dict[str, int] = {}
        self._orders: dict[str, int] = {}
        self._size = 0

    def add(self, e: dict[str, Any]) -> None:
        i, ints, small = self._size, self._ints, self._small
        # The timestamp is ISO-8601 with a trailing Z, which numpy's datetime64 does not take.
        self._stamps.append(e["timestamp"][:-1])
        ints["session"][i] = self._sessions.setdefault(e["session_id"], len(self._sessions))
        ints["session_event_index"][i] = e["session_event_index"]
        ints["user"][i] = int(e["user_id"][1:])
        ints["product"][i] = int(e["product_id"][1:])
        ints["price_cents"][i] = round(e["price"] * 100)
        ints["duration_s"][i] = e["duration"] or 0
        order = e.get("order_id")  # not in every version of the events: absent means no order id
        ints["order"][i] = NO_ORDER if order is None else self._orders.setdefault(order, len(self._orders))
        small["kind"][i] = KIND_NUMBER[e["interaction_type"]]
        small["category"][i] = CATEGORY_NUMBER[e["category"]]
        self._size += 1

    @property
    def sessions(self) -> int:
        """Distinct session ids added so far."""
        return len(self._sessions)

    def columns(self) -> EventColumns:
        n, ints, small = self._size, self._ints, self._small
        return EventColumns(
            time_ms=np.array(self._stamps, dtype="datetime64[ms]").astype(np.int64), session=ints["session"][:n],
            session_event_index=ints["session_event_index"][:n], user=ints["user"][:n], kind=small["kind"][:n],
            product=ints["product"][:n], category=small["category"][:n], price_cents=ints["price_cents"][:n],
            duration_s=ints["duration_s"][:n], order=ints["order"][:n])
