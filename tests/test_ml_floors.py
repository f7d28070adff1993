"""The floors of the report's section For ML use, on 2M events of a fixed seed: what the behaviour model with
signal (intent, item similarity, orders, conversion that depends on the view, exits that depend on the last
event, `funnel=retail`) meets."""

from __future__ import annotations

import pytest

from clickstream.ml_signal import SignalFigures, signal_failed_rows
from clickstream.report import measure, model_config
from clickstream.workers.generator import EventGenerator

EVENTS = 2_000_000
SEED = 7


def _signal(funnel: str | None) -> SignalFigures:
    config = model_config(SEED, 100_000, 50_000, funnel)
    signal = measure(EventGenerator(config), EVENTS).signal
    assert signal is not None
    return signal


@pytest.mark.timeout(600)
def test_the_default_funnel_meets_every_floor() -> None:
    f = _signal(None)
    for kind in ("view", "purchase"):
        assert f.hit_taste[kind] >= 1.5 * f.hit_popular[kind], kind
    assert f.coview_concentration >= 2 * f.coview_concentration_shuffled
    assert f.same_brand_share >= 3 * f.same_brand_chance
    assert f.consecutive_same_category >= 2 * f.cross_session_same_category
    assert f.cart_by_duration[1] >= 2 * f.cart_by_duration[0]
    assert f.cart_by_budget[1] > f.cart_by_budget[0]  # below the budget converts more than above it
    assert f.cart_by_rating[1] > f.cart_by_rating[0]
    assert f.out_of_stock_carts == 0 and f.out_of_stock_purchases == 0
    assert f.has_order_ids and f.multi_item_order_share >= 0.2
    assert f.end_rate["purchase"] >= 2 * f.end_rate["view"]
    assert 0.15 <= f.single_event_session_share <= 0.25
    assert signal_failed_rows(f) == []


@pytest.mark.timeout(600)
def test_the_retail_funnel_meets_its_mix_conversion_and_abandonment() -> None:
    f = _signal("retail")
    assert f.funnel == "retail"
    for kind, share in (("view", 0.967), ("add_to_cart", 0.025), ("purchase", 0.008)):
        assert abs(f.type_share[kind] - share) <= 0.005, kind
    assert 0.02 <= f.session_conversion <= 0.03
    assert 0.65 <= f.cart_abandonment <= 0.75
    assert [name for name in signal_failed_rows(f) if name.startswith("retail:")] == []
