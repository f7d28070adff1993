"""The measures of the report's section For ML use, proven on small synthetic events where the signal is
planted (the ratio comes out high) or absent (it comes out about 1)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import ujson

from clickstream.columns import NO_ORDER, ColumnBuilder, EventColumns
from clickstream.errors import ConfigError
from clickstream.ml_signal import (
    ProductFacts,
    SignalFigures,
    cart_rates,
    carted_views,
    category_coherence,
    coview_concentration,
    ended_sessions,
    funnel_rates,
    hit_rates,
    measure_signal,
    multi_item_orders,
    popular_products,
    same_brand,
    session_endings,
    shuffle_within_category,
    signal_failed_rows,
    signal_rows,
    split_by_time,
    taste_recommendations,
)
from clickstream.report import model_config
from clickstream.workers.model import CART, CLICK, MAX_SESSION_MS, PURCHASE, VIEW, WISHLIST, ModelConfig

RNG_SEED = 5


def make(session: np.ndarray, kind: np.ndarray, product: np.ndarray, *, user: np.ndarray | None = None,
         category: np.ndarray | None = None, time_ms: np.ndarray | None = None, duration: np.ndarray | None = None,
         price: np.ndarray | None = None, order: np.ndarray | None = None) -> EventColumns:
    """Events in the given order (which is each session's order); unset columns get neutral values: one
    user per session, category 0, one second between events, 60 s views, $10."""
    session = np.asarray(session, dtype=np.int64)
    n = session.size
    index = np.zeros(n, dtype=np.int64)
    for s in np.unique(session):
        mine = np.flatnonzero(session == s)
        index[mine] = np.arange(1, mine.size + 1)
    kind = np.asarray(kind, dtype=np.int8)
    return EventColumns(
        time_ms=np.arange(n, dtype=np.int64) * 1000 if time_ms is None else np.asarray(time_ms, dtype=np.int64),
        session=session, session_event_index=index,
        user=session.copy() if user is None else np.asarray(user, dtype=np.int64),
        kind=kind, product=np.asarray(product, dtype=np.int64),
        category=np.zeros(n, dtype=np.int8) if category is None else np.asarray(category, dtype=np.int8),
        price_cents=np.full(n, 1000, dtype=np.int64) if price is None else np.asarray(price, dtype=np.int64),
        duration_s=np.where(kind == VIEW, 60, 0) if duration is None else np.asarray(duration, dtype=np.int64),
        order=np.full(n, NO_ORDER, dtype=np.int64) if order is None else np.asarray(order, dtype=np.int64),
        segment=np.zeros(n, dtype=np.int8))


def views_of(user: np.ndarray, product: np.ndarray, n_categories: int, per_category: int,
             sessions_per_user: int = 5) -> EventColumns:
    """Views only, in time order, of products numbered category * per_category + rank."""
    n = user.size
    session = user * sessions_per_user + np.arange(n) % sessions_per_user
    return make(session, np.full(n, VIEW), product, user=user, category=product // per_category)


def zipf_ranks(rng: np.random.Generator, size: int, n: int) -> np.ndarray:
    weights = 1 / np.arange(1, n + 1)
    return rng.choice(n, size=size, p=weights / weights.sum())


# ---- 1. hit-rate@10 ----

def test_the_split_puts_the_first_80_percent_of_event_time_in_train() -> None:
    train = split_by_time(np.arange(1000))
    assert train.sum() == 800 and train[:800].all() and not train[800:].any()


def test_a_users_taste_beats_popularity_when_users_keep_to_their_categories() -> None:
    rng = np.random.default_rng(RNG_SEED)
    users, per_category = 200, 30
    user = np.repeat(np.arange(users), 60)
    liked = user % 10  # each user views one category only
    c = views_of(user, liked * per_category + zipf_ranks(rng, user.size, per_category), 10, per_category)
    c = dataclasses.replace(c, time_ms=rng.permutation(user.size))  # train and test both hold every user
    train = split_by_time(c.time_ms)
    tested, popular, taste = hit_rates(c, train, taste_recommendations(c, train, 300),
                                       popular_products(c, train, 300), VIEW)
    assert tested == (~train).sum()
    # Taste: the user's category's top 10 of 30 Zipf ranks, H(10) / H(30) = 0.73; popularity: the 10
    # categories' best sellers, one of which is the user's (1 / H(30) = 0.25).
    assert taste == pytest.approx(0.73, abs=0.03) and popular == pytest.approx(0.25, abs=0.03)


def test_a_taste_spread_evenly_over_categories_recommends_what_is_popular() -> None:
    rng = np.random.default_rng(RNG_SEED)
    per_category = 30
    user = np.repeat(np.arange(100), 50)
    category = np.arange(user.size) % 10  # every user's events exactly evenly over the categories
    c = views_of(user, category * per_category + zipf_ranks(rng, user.size, per_category), 10, per_category)
    c = dataclasses.replace(c, time_ms=np.tile(np.arange(50), 100))
    train = split_by_time(c.time_ms)
    _, popular, taste = hit_rates(c, train, taste_recommendations(c, train, 300),
                                  popular_products(c, train, 300), VIEW)
    assert taste == pytest.approx(popular, abs=0.01)


def test_users_without_train_events_are_not_tested() -> None:
    c = make(np.array([0, 0, 1]), np.full(3, VIEW), np.array([1, 2, 3]), time_ms=np.array([0, 1, 2]))
    train = np.array([True, True, False])  # user 1's only view is in test
    tested, _, _ = hit_rates(c, train, taste_recommendations(c, train, 10), popular_products(c, train, 10), VIEW)
    assert tested == 0


# ---- 2. co-views ----

def _sessions_of_pairs(linked: bool, sessions: int = 4000) -> EventColumns:
    """Each session views two products of one category: a fixed partner of the first (linked) or any
    product of the category by popularity."""
    rng = np.random.default_rng(RNG_SEED)
    first = zipf_ranks(rng, sessions, 200)
    second = first ^ 1 if linked else zipf_ranks(rng, sessions, 200)
    product = np.stack([first, second], axis=1).reshape(-1)
    return make(np.repeat(np.arange(sessions), 2), np.full(2 * sessions, VIEW), product)


def test_co_view_pairs_of_similar_items_recur_beyond_their_shuffle() -> None:
    c = _sessions_of_pairs(linked=True)
    shuffled = shuffle_within_category(c.product, c.category, RNG_SEED)
    assert sorted(shuffled) == sorted(c.product)  # a permutation: popularity kept
    assert coview_concentration(c.session, c.product, 200) > 2 * coview_concentration(c.session, shuffled, 200)


def test_co_views_driven_by_popularity_alone_are_as_concentrated_as_their_shuffle() -> None:
    c = _sessions_of_pairs(linked=False)
    shuffled = shuffle_within_category(c.product, c.category, RNG_SEED)
    ratio = coview_concentration(c.session, c.product, 200) / coview_concentration(c.session, shuffled, 200)
    assert 0.8 < ratio < 1.25


def test_co_view_concentration_counts_each_sessions_pair_once() -> None:
    # Sessions {1, 2}, {1, 2, 2}, {1, 3}: pair (1, 2) in 2 sessions, (1, 3) in 1: (4 + 1) / 3.
    session = np.array([0, 0, 1, 1, 1, 2, 2])
    product = np.array([1, 2, 2, 1, 2, 1, 3])
    assert coview_concentration(session, product, 10) == pytest.approx(5 / 3)


def test_the_shuffle_keeps_products_in_their_category() -> None:
    product = np.arange(100)
    category = product // 10
    shuffled = shuffle_within_category(product, category, RNG_SEED)
    assert (shuffled // 10 == category).all() and (shuffled != product).any()


# ---- 3. brands ----

def test_users_loyal_to_a_brand_pair_its_products_far_above_chance() -> None:
    rng = np.random.default_rng(RNG_SEED)
    brand = np.arange(1000) // 25  # 40 brands of 25 products
    user = np.repeat(np.arange(300), 20)
    loyal = (user % 40) * 25 + rng.integers(0, 25, user.size)
    share, chance = same_brand(user, loyal, brand)
    assert share == pytest.approx(1.0) and chance == pytest.approx(1 / 40, rel=0.1)


def test_users_viewing_at_random_share_brands_by_chance() -> None:
    rng = np.random.default_rng(RNG_SEED)
    brand = np.arange(1000) // 25
    user = np.repeat(np.arange(300), 20)
    share, chance = same_brand(user, zipf_ranks(rng, user.size, 1000), brand)
    assert 0.8 < share / chance < 1.25


# ---- 4. categories ----

def test_sessions_that_keep_to_one_category_are_coherent_beyond_the_users_other_sessions() -> None:
    rng = np.random.default_rng(RNG_SEED)
    session = np.repeat(np.arange(2000), 6)
    category = np.repeat(rng.integers(0, 10, 2000), 6)  # one category per session
    c = make(session, np.full(session.size, VIEW), np.arange(session.size), user=session // 10, category=category)
    consecutive, across = category_coherence(c)
    assert consecutive == 1.0 and across == pytest.approx(0.1, abs=0.02)


def test_views_of_random_categories_are_as_coherent_within_as_across_sessions() -> None:
    rng = np.random.default_rng(RNG_SEED)
    session = np.repeat(np.arange(2000), 6)
    c = make(session, np.full(session.size, VIEW), np.arange(session.size), user=session // 10,
             category=rng.integers(0, 10, session.size))
    consecutive, across = category_coherence(c)
    assert 0.8 < consecutive / across < 1.25


def test_only_views_count_for_category_coherence() -> None:
    # view A, click B, view A: the views are consecutive among views and share their category.
    c = make(np.zeros(3), np.array([VIEW, CLICK, VIEW]), np.array([1, 2, 3]), category=np.array([0, 1, 0]))
    assert category_coherence(c)[0] == 1.0


# ---- 5. what makes a view convert ----

def test_a_view_counts_as_carted_when_the_next_event_on_its_product_is_an_add_to_cart() -> None:
    # product 1: view, (view of 2), cart -> carted; product 3: view, click, cart -> the click is next.
    kind = np.array([VIEW, VIEW, CART, VIEW, CLICK, CART, VIEW])
    product = np.array([1, 2, 1, 3, 3, 3, 4])
    assert carted_views(make(np.zeros(7), kind, product)).tolist() == [True, False, False, False, False, False,
                                                                        False]


def _view_then_maybe_cart(carted: np.ndarray, **columns: np.ndarray) -> EventColumns:
    """One session per view: a view of product s, then an add_to_cart of it where `carted`."""
    views = carted.size
    session = np.repeat(np.arange(views), 2)
    kind = np.tile([VIEW, CART], views)
    keep = np.ones(session.size, dtype=bool)
    keep[1::2] = carted
    expanded = {name: np.repeat(values, 2)[keep] for name, values in columns.items()}
    return make(session[keep], kind[keep], np.repeat(np.arange(views), 2)[keep], **expanded)


def test_carts_that_follow_long_views_cheap_prices_and_good_ratings_are_measured_so() -> None:
    rng = np.random.default_rng(RNG_SEED)
    views = 5000
    duration = rng.integers(5, 301, views)
    price = rng.integers(1000, 5000, views)
    rating = rng.integers(30, 51, views)
    # Cart odds rise with duration, fall with price, rise with rating.
    p = 0.05 + 0.3 * (duration / 300) + 0.2 * (price < 3000) + 0.2 * (rating > 40)
    carted = rng.random(views) < p
    c = _view_then_maybe_cart(carted, duration=duration, price=price, user=np.zeros(views))
    c = dataclasses.replace(c, duration_s=np.where(c.kind == VIEW, c.duration_s, 0))
    facts = ProductFacts(np.zeros(views, dtype=np.int64), rating, np.ones(views, dtype=bool))
    rates = cart_rates(c, facts, np.ones(views, dtype=bool))
    assert rates["duration"][1] > 2 * rates["duration"][0]
    assert rates["budget"][1] > rates["budget"][0] + 0.1  # below the budget converts more
    assert rates["rating"][1] > rates["rating"][0] + 0.1


def test_carts_independent_of_the_view_move_with_nothing() -> None:
    rng = np.random.default_rng(RNG_SEED)
    views = 20_000
    c = _view_then_maybe_cart(rng.random(views) < 0.2, duration=rng.integers(5, 301, views),
                              price=rng.integers(1000, 5000, views), user=np.zeros(views))
    c = dataclasses.replace(c, duration_s=np.where(c.kind == VIEW, c.duration_s, 0))
    facts = ProductFacts(np.zeros(views, dtype=np.int64), rng.integers(30, 51, views), np.ones(views, dtype=bool))
    rates = cart_rates(c, facts, np.ones(views, dtype=bool))
    for low, high in rates.values():
        assert high == pytest.approx(low, abs=0.03)


# ---- 6. orders ----

def test_purchases_sharing_an_order_id_are_one_order() -> None:
    kind = np.array([PURCHASE, PURCHASE, PURCHASE, PURCHASE, VIEW])
    order = np.array([0, 0, 1, NO_ORDER, NO_ORDER])
    orders, multi = multi_item_orders(make(np.zeros(5), kind, np.arange(5), order=order))
    assert orders == 3 and multi == pytest.approx(1 / 3)


def test_without_order_ids_each_purchase_is_its_own_order() -> None:
    orders, multi = multi_item_orders(make(np.zeros(3), np.full(3, PURCHASE), np.arange(3)))
    assert orders == 3 and multi == 0


# ---- 7 and 8. exits and the funnel ----

def test_a_session_has_ended_when_it_started_an_hour_before_the_samples_end() -> None:
    time_ms = np.array([0, 10, MAX_SESSION_MS, MAX_SESSION_MS + 5])
    c = make(np.array([0, 0, 1, 2]), np.full(4, VIEW), np.arange(4), time_ms=time_ms)
    assert ended_sessions(c).tolist() == [True, False, False]


def test_exits_are_counted_after_the_last_event_of_each_session() -> None:
    # Sessions: view, cart, purchase (ends after a purchase); view, view (ends after a view); one click.
    session = np.array([0, 0, 0, 1, 1, 2])
    kind = np.array([VIEW, CART, PURCHASE, VIEW, VIEW, CLICK])
    rates, single = session_endings(make(session, kind, np.arange(6)), np.ones(3, dtype=bool))
    assert rates["purchase"] == 1.0 and rates["view"] == pytest.approx(1 / 3) and rates["click"] == 1.0
    assert rates["add_to_cart"] == 0.0 and np.isnan(rates["wishlist"])
    assert single == pytest.approx(1 / 3)


def test_sessions_not_ended_or_seen_without_their_start_are_left_out_of_the_rates() -> None:
    session = np.array([0, 0, 1, 2, 2])
    kind = np.array([VIEW, PURCHASE, VIEW, VIEW, WISHLIST])
    c = make(session, kind, np.arange(5))
    c = dataclasses.replace(c, session_event_index=np.array([1, 2, 1, 4, 5]))  # session 2 began before
    ended = np.array([True, False, True])
    rates, single = session_endings(c, ended)
    # Session 1 (not ended) ends on its view but is not counted; the others end on a purchase, a wishlist.
    assert rates["view"] == 0.0 and rates["wishlist"] == 1.0 and single == 0.0
    conversion, abandonment = funnel_rates(c, ended)
    assert conversion == 1.0 and np.isnan(abandonment)


def test_conversion_and_cart_abandonment_count_whole_sessions() -> None:
    # Session 0 buys, 1 abandons its cart, 2 and 3 only view.
    session = np.array([0, 0, 0, 1, 1, 2, 3])
    kind = np.array([VIEW, CART, PURCHASE, VIEW, CART, VIEW, VIEW])
    conversion, abandonment = funnel_rates(make(session, kind, np.arange(7)), np.ones(4, dtype=bool))
    assert conversion == 0.25 and abandonment == 0.5


# ---- the section ----

def _planted_store() -> tuple[EventColumns, ProductFacts]:
    rng = np.random.default_rng(RNG_SEED)
    sessions = 3000
    session = np.repeat(np.arange(sessions), 4)
    kind = np.tile([VIEW, VIEW, CART, PURCHASE], sessions)
    first = zipf_ranks(rng, sessions, 100)
    product = np.stack([first, first ^ 1, first ^ 1, first ^ 1], axis=1).reshape(-1)
    c = make(session, kind, product, user=session // 3, time_ms=np.arange(session.size) * 60_000)
    facts = ProductFacts(np.arange(100) // 10, np.full(100, 40), np.arange(100) != 99)
    return c, facts


def test_measure_signal_fills_every_figure_and_its_rows() -> None:
    c, facts = _planted_store()
    f = measure_signal(c, facts, seed=RNG_SEED)
    assert isinstance(f, SignalFigures) and len(f.rows) == 16
    assert f.coview_concentration > 2 * f.coview_concentration_shuffled
    assert f.end_rate["purchase"] == 1.0 and f.end_rate["view"] == 0.0
    assert f.out_of_stock_carts == f.out_of_stock_purchases == int((c.product[c.kind == CART] == 99).sum())
    assert f.type_share == {"view": 0.5, "click": 0.0, "add_to_cart": 0.25, "purchase": 0.25, "wishlist": 0.0}
    assert not f.has_order_ids and f.multi_item_order_share == 0


def test_failing_floors_are_marked_and_the_retail_rows_judged_only_for_funnel_retail() -> None:
    c, facts = _planted_store()
    f = measure_signal(c, facts, seed=RNG_SEED)
    failed = signal_failed_rows(f)
    assert "orders with more than one item" in failed
    assert "co-view pair recurrence / shuffled in category" not in failed
    retail = [row for row in f.rows if row[0].startswith("retail:")]
    assert len(retail) == 3 and all(ok is None for *_, ok in retail)
    f.funnel = "retail"
    judged = [ok for name, _t, _m, ok in signal_rows(f) if name.startswith("retail:")]
    assert judged == [False, False, False]


def test_the_columns_take_an_order_id_when_events_carry_one() -> None:
    event = {"timestamp": "2026-01-01T00:00:02.095Z", "session_id": "s1", "session_event_index": 4,
             "interaction_type": "purchase", "duration": None, "user_id": "u00073300", "user_segment": "power",
             "product_id": "p0023251", "category": "toys", "price": 21.99}
    builder = ColumnBuilder()
    builder.add(ujson.loads(ujson.dumps(event)))
    builder.add({**event, "order_id": "o7", "interaction_type": "view", "duration": 30})
    builder.add({**event, "order_id": "o7", "session_id": "s2"})
    c = builder.columns()
    assert c.order.tolist() == [NO_ORDER, 0, 0] and c.session.tolist() == [0, 0, 1]
    assert c.user[0] == 73300 and c.product[0] == 23251 and c.price_cents[0] == 2199
    assert c.duration_s.tolist() == [0, 30, 0] and c.kind.tolist() == [PURCHASE, VIEW, PURCHASE]
    assert c.time_ms[0] == np.datetime64("2026-01-01T00:00:02.095", "ms").astype(np.int64)


def test_a_funnel_the_model_does_not_have_is_a_config_error(capsys: pytest.CaptureFixture[str]) -> None:
    from clickstream.cli import main

    assert model_config(7, 1000, 100, "retail").funnel == "retail"
    assert model_config(7, 1000, 100, None) == ModelConfig(7, 1000, 100)
    with pytest.raises(ConfigError):
        model_config(7, 1000, 100, "no-such-funnel")
    assert main(["report", "--events", "100", "--funnel", "shop"]) == 2
    assert "--funnel shop" in capsys.readouterr().err


def test_the_report_prints_the_section_for_ml_use() -> None:
    from clickstream.report import format_report, measure
    from clickstream.workers.generator import EventGenerator

    config = ModelConfig(seed=3, max_users=2_000, max_products=500)
    figures = measure(EventGenerator(config), 20_000)
    text = format_report(figures, None, config)
    assert "For ML use (train: first 80% of event time" in text and "funnel mix" in text
    failed = signal_failed_rows(figures.signal) if figures.signal is not None else None
    assert failed is not None and (f"For ML use: {len(failed)} FAILED" in text if failed else
                                   "For ML use: every floor met." in text)
