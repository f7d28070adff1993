"""The report's vectorised funnel check on planted events: every kind of violation found, in sessions seen
from their start only, with examples in stream order."""

from __future__ import annotations

import dataclasses

import numpy as np

from clickstream.report import _funnel_check
from clickstream.workers.model import CART, CLICK, PURCHASE, VIEW, WISHLIST
from tests.test_ml_signal import make


def test_each_funnel_violation_is_found_in_sessions_seen_from_their_start() -> None:
    # Session 0: view 1, cart 1, purchase 1 (fine), click 2, cart 2 (fine), wishlist 2 (never viewed: bad),
    # purchase 3 (not in the cart: bad). Session 1: cart 4 before any view (bad), then view 4, cart 4 (fine).
    # Session 2 began before the sample: its cart of 5 is not judged.
    session = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2])
    kind = np.array([VIEW, CART, PURCHASE, CLICK, CART, WISHLIST, PURCHASE, CART, VIEW, CART, CART])
    product = np.array([1, 1, 1, 2, 2, 2, 3, 4, 4, 4, 5])
    c = make(session, kind, product)
    index = c.session_event_index.copy()
    index[-1] = 7
    c = dataclasses.replace(c, session_event_index=index, session_ids=("s0", "s1", "s2"))
    checked, violations, examples = _funnel_check(c, lambda p: f"p{p:07d}")
    assert checked == 2 and violations == 3
    assert examples == ["s0 #6: wishlist of p0000002 never viewed in the session",
                        "s0 #7: purchase of p0000003 not in the session's cart",
                        "s1 #1: add_to_cart of p0000004 never viewed or clicked in the session"]
