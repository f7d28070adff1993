"""The report's section "For ML use": does the data carry the signals a model would learn from?

Every figure is computed from the events a client received (`EventColumns`), joined to the catalog's
product facts (brand, rating, stock) by product id, with numpy only. Definitions:

- Train / test: the first 80 % of the sample's event time is train, the rest test (`split_by_time`).
- A session has *ended* when its first event seen is at least an hour (the longest session) before the
  sample's last event: its last event seen is its last event. Exits, the add_to_cart that follows a view
  and the per-session rates count ended sessions only (so the sample's end cuts nothing short).
- A session is *whole* when it has ended and its event 1 is in the sample.

Floors (`signal_rows`): personalised hit-rate@10 >= 1.5x popularity; co-view concentration >= 2x its
shuffle; same-brand pairs >= 3x chance; consecutive views sharing a category >= 2x other sessions' views;
P(add_to_cart | view) top duration quintile >= 2x the bottom one, higher below the user's budget and for
better-rated products; no add_to_cart or purchase of an out-of-stock product; >= 20 % of orders with more
than one item; P(session ends | purchase) >= 2x P(session ends | view); about a fifth of sessions with one
event; and, for `funnel=retail`, the retail mix, conversion and cart abandonment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .columns import NO_ORDER, EventColumns
from .limits import DEFAULT_FUNNEL
from .workers.model import CART, INTERACTION_TYPES, MAX_SESSION_MS, PURCHASE, VIEW

TRAIN_SHARE = 0.8
TOP_K = 10
Row = tuple[str, str, str, bool | None]  # (figure, target, measured, passed or None for information)

RETAIL_SHARES = {"view": 0.967, "add_to_cart": 0.025, "purchase": 0.008}
RETAIL_SHARE_TOLERANCE = 0.005
RETAIL_CONVERSION = (0.02, 0.03)
RETAIL_ABANDONMENT = (0.65, 0.75)
SINGLE_EVENT_SESSIONS = (0.15, 0.25)  # "about a fifth"
CATEGORY_SLOTS = 256  # categories are int8: a (user or session, category) key is id * 256 + category


@dataclass(frozen=True)
class ProductFacts:
    """Catalog facts per product index: what the events do not carry."""

    brand: np.ndarray  # int, a brand number
    rating_tenths: np.ndarray  # int, 30..50
    in_stock: np.ndarray  # bool

    @classmethod
    def of(cls, catalog: Any) -> ProductFacts:
        """From a `clickstream.workers.catalog.Catalog`."""
        return cls(np.asarray(catalog.product_brand, dtype=np.int64),
                   np.asarray(catalog.product_rating_tenths, dtype=np.int64), np.asarray(catalog.product_in_stock))

    @property
    def n_products(self) -> int:
        return int(self.brand.size)


@dataclass
class SignalFigures:
    funnel: str  # the model's funnel (mix or retail)
    hit_tested: dict[str, int]  # "view"/"purchase": test events whose user has train history
    hit_popular: dict[str, float]  # hit-rate@10 of the train period's 10 most viewed products
    hit_taste: dict[str, float]  # hit-rate@10 of the user's taste (train categories x popularity)
    coview_concentration: float  # sum(n_pair^2) / sum(n_pair) over pairs of products viewed in one session
    coview_concentration_shuffled: float  # the same after shuffling viewed products within their category
    same_brand_share: float  # pairs of distinct products one user viewed that share a brand
    same_brand_chance: float  # two views drawn from the view shares (distinct products) sharing a brand
    consecutive_same_category: float  # a session's consecutive views sharing a category
    cross_session_same_category: float  # two views of one user from different sessions sharing one
    cart_by_duration: tuple[float, float]  # P(add_to_cart | view): bottom, top quintile of duration
    cart_by_budget: tuple[float, float]  # below, above the user's median viewed price in the category
    cart_by_rating: tuple[float, float]  # rating below, above the views' median rating
    out_of_stock_carts: int
    out_of_stock_purchases: int
    orders: int
    multi_item_order_share: float
    has_order_ids: bool  # False: no event carried an order_id, each purchase counted as its own order
    end_rate: dict[str, float]  # per type: P(the session ends right after the event)
    single_event_session_share: float  # whole sessions with one event
    type_share: dict[str, float]  # share of events per type
    session_conversion: float  # whole sessions with a purchase
    cart_abandonment: float  # whole sessions with an add_to_cart but no purchase / with an add_to_cart
    rows: list[Row] = field(default_factory=list)


def _rate(hits: np.ndarray | int | float, total: np.ndarray | int | float) -> float:
    """hits / total, NaN (which fails every floor) when nothing was counted."""
    return float(hits) / float(total) if float(total) else float("nan")


def split_by_time(time_ms: np.ndarray, train_share: float = TRAIN_SHARE) -> np.ndarray:
    """True for the train events: those before the time that leaves `train_share` of the events before it."""
    if time_ms.size == 0:
        return np.zeros(0, dtype=bool)
    cut = np.sort(time_ms)[min(int(time_ms.size * train_share), time_ms.size - 1)]
    return np.asarray(time_ms < cut)


def session_order(c: EventColumns) -> np.ndarray:
    """Event indices grouped by session, each session's events in their order."""
    return np.lexsort((c.session_event_index, c.session))


def ended_sessions(c: EventColumns) -> np.ndarray:
    """Per session number: True when the session has ended within the sample (see the module's docstring)."""
    first = np.full(int(c.session.max()) + 1 if len(c) else 0, np.iinfo(np.int64).max)
    np.minimum.at(first, c.session, c.time_ms)
    return np.asarray(first <= (c.time_ms.max() if len(c) else 0) - MAX_SESSION_MS)


# ---- 1. recommendations ----

def popular_products(c: EventColumns, train: np.ndarray, n_products: int, k: int = TOP_K) -> np.ndarray:
    """The k products with the most train views (ties: the lower product number)."""
    views = np.bincount(c.product[train & (c.kind == VIEW)], minlength=n_products)
    return np.argsort(-views, kind="stable")[:k]


def taste_recommendations(c: EventColumns, train: np.ndarray, n_products: int,
                          k: int = TOP_K) -> tuple[np.ndarray, np.ndarray]:
    """The user's taste: (users with train events, sorted; their k recommendations, one row each).

    A user's score for product p of category g is (share of the user's train events in g) x (p's train
    views); the recommendations are the k best scores (ties: category order, then more views, then the
    lower product number). Only each category's k most viewed products can make a top k, so they are
    the only candidates.
    """
    views = np.bincount(c.product[train & (c.kind == VIEW)], minlength=n_products).astype(np.float64)
    n_categories = int(c.category.max()) + 1 if len(c) else 1
    product_category = np.full(n_products, -1, dtype=np.int64)
    product_category[c.product] = c.category
    candidates = np.zeros((n_categories, k), dtype=np.int64)
    candidate_views = np.zeros((n_categories, k))  # 0 pads a category with fewer than k products
    for g in range(n_categories):
        mine = np.flatnonzero(product_category == g)
        best = mine[np.argsort(-views[mine], kind="stable")[:k]]
        candidates[g, :best.size], candidate_views[g, :best.size] = best, views[best]
    users, row = np.unique(c.user[train], return_inverse=True)
    taste = np.bincount(row * n_categories + c.category[train],
                        minlength=users.size * n_categories).reshape(users.size, n_categories).astype(np.float64)
    taste /= np.maximum(taste.sum(axis=1, keepdims=True), 1)
    score = (taste[:, :, None] * candidate_views[None, :, :]).reshape(users.size, -1)
    best = np.argsort(-score, axis=1, kind="stable")[:, :k]
    return users, candidates.reshape(-1)[best]


def hit_rates(c: EventColumns, train: np.ndarray, taste: tuple[np.ndarray, np.ndarray], popular: np.ndarray,
              kind: int) -> tuple[int, float, float]:
    """hit-rate@10 over the test events of `kind` whose user has train events: (those events, popularity's
    rate, taste's rate). An event is a hit when its product is among its user's 10 recommendations
    (`taste`, from `taste_recommendations`), or among the 10 `popular` products (the same for every user)."""
    users, recommended = taste
    test = ~train & (c.kind == kind)
    row = np.searchsorted(users, c.user[test])
    known = row < users.size
    known[known] = users[row[known]] == c.user[test][known]
    product = c.product[test][known]
    taste_hits = (recommended[row[known]] == product[:, None]).any(axis=1)
    popular_hits = np.isin(product, popular)
    return int(product.size), _rate(popular_hits.sum(), product.size), _rate(taste_hits.sum(), product.size)


# ---- 2. co-views ----

def coview_concentration(session: np.ndarray, product: np.ndarray, n_products: int) -> float:
    """sum(n^2) / sum(n), n the number of sessions in which a pair of distinct products was both viewed:
    the number of sessions a random co-view pair recurs in. Pairs driven by popularity alone recur as
    often after shuffling products within their category; item similarity makes them recur more."""
    keys = np.unique(session * n_products + product)  # grouped by session, products ascending in each
    s, p = keys // n_products, keys % n_products
    pairs = []
    for d in range(1, keys.size):  # the d-th next product of the same session: every pair once
        same = s[d:] == s[:-d]
        if not same.any():
            break
        pairs.append(p[:-d][same] * n_products + p[d:][same])
    if not pairs:
        return float("nan")
    counts = np.unique(np.concatenate(pairs), return_counts=True)[1].astype(np.float64)
    return float((counts**2).sum() / counts.sum())


def shuffle_within_category(product: np.ndarray, category: np.ndarray, seed: int) -> np.ndarray:
    """The products reassigned at random among the events of their category (a seeded permutation): each
    product keeps its count and category, pairs lose whatever links them beyond that."""
    rng = np.random.default_rng(seed)
    shuffled = np.empty_like(product)
    shuffled[np.argsort(category, kind="stable")] = product[np.lexsort((rng.random(product.size), category))]
    return shuffled


# ---- 3. brands ----

def same_brand(user: np.ndarray, product: np.ndarray, brand: np.ndarray) -> tuple[float, float]:
    """(share of pairs of distinct products one user viewed that share a brand, chance), pairs pooled over
    users. Chance: two draws from the products' view shares s_p, given distinct products, share a brand:
    (sum_b s_b^2 - sum_p s_p^2) / (1 - sum_p s_p^2). A product counts once per user who viewed it (the
    pairs do too: a popular product viewed again by the same user makes no new pair)."""
    n_products = int(brand.size)
    seen = np.unique(user * n_products + product)
    owner, seen_product = seen // n_products, seen % n_products
    seen_brand = brand[seen_product]
    per_user = np.unique(owner, return_counts=True)[1].astype(np.float64)
    per_brand = np.unique(owner * (int(brand.max()) + 1) + seen_brand, return_counts=True)[1].astype(np.float64)
    share = _rate((per_brand * (per_brand - 1)).sum(), (per_user * (per_user - 1)).sum())
    s_p = np.bincount(seen_product, minlength=n_products) / max(seen.size, 1)
    s_b = np.bincount(brand, weights=s_p)
    collide = float((s_p**2).sum())
    return share, _rate(float((s_b**2).sum()) - collide, 1 - collide)


# ---- 4. categories within and across sessions ----

def category_coherence(c: EventColumns) -> tuple[float, float]:
    """(share of a session's consecutive views that share a category, share of ordered pairs of one user's
    views from different sessions that do). The second counts every such pair exactly:
    (sum over user, category of n^2 - the same within sessions) / (sum over users of n^2 - within sessions)."""
    views = np.flatnonzero(c.kind == VIEW)
    order = views[np.lexsort((c.session_event_index[views], c.session[views]))]
    same_session = c.session[order][1:] == c.session[order][:-1]
    same_category = c.category[order][1:] == c.category[order][:-1]
    consecutive = _rate((same_session & same_category).sum(), same_session.sum())

    def squares(key: np.ndarray) -> float:
        counts = np.unique(key, return_counts=True)[1].astype(np.float64)
        return float((counts**2).sum())

    user, session, category = c.user[views], c.session[views], c.category[views].astype(np.int64)
    across_same = squares(user * CATEGORY_SLOTS + category) - squares(session * CATEGORY_SLOTS + category)
    across = squares(user) - squares(session)
    return consecutive, _rate(across_same, across)


# ---- 5. what makes a view convert ----

def carted_views(c: EventColumns) -> np.ndarray:
    """Per event: True for a view whose session's next event on the same product is an add_to_cart."""
    order = np.lexsort((c.session_event_index, c.product, c.session))
    same = (c.session[order][1:] == c.session[order][:-1]) & (c.product[order][1:] == c.product[order][:-1])
    carted = np.zeros(len(c), dtype=bool)
    carted[order[:-1]] = same & (c.kind[order][1:] == CART) & (c.kind[order][:-1] == VIEW)
    return carted


def group_medians(group: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Per element: the median of `value` over the elements of its group."""
    order = np.lexsort((value, group))
    _, start, inverse, count = np.unique(group[order], return_index=True, return_inverse=True,
                                         return_counts=True)
    v = value[order].astype(np.float64)
    medians = (v[start + (count - 1) // 2] + v[start + count // 2]) / 2
    out = np.empty(group.size)
    out[order] = medians[inverse]
    return out


def cart_rates(c: EventColumns, facts: ProductFacts, ended: np.ndarray) -> dict[str, tuple[float, float]]:
    """P(add_to_cart | view) on each side of three splits of the ended sessions' views (unfavourable
    side first): duration bottom vs top quintile; price above vs below the user's budget (the median
    price of the views of that user in that category, over the whole sample); rating below vs above the
    median rating of the viewed products. A view on the split point is on neither side."""
    views = np.flatnonzero(c.kind == VIEW)
    budget = group_medians(c.user[views] * CATEGORY_SLOTS + c.category[views], c.price_cents[views])
    keep = ended[c.session[views]]
    views, price, budget = views[keep], c.price_cents[views][keep], budget[keep]
    carted = carted_views(c)[views]
    if views.size == 0:
        nan = (float("nan"), float("nan"))
        return {"duration": nan, "budget": nan, "rating": nan}
    duration = c.duration_s[views]
    low, high = np.percentile(duration, [20, 80])
    rating = facts.rating_tenths[c.product[views]]
    middle = np.median(rating)

    def split(bad: np.ndarray, good: np.ndarray) -> tuple[float, float]:
        return _rate(carted[bad].sum(), bad.sum()), _rate(carted[good].sum(), good.sum())

    return {"duration": split(duration <= low, duration >= high), "budget": split(price > budget, price < budget),
            "rating": split(rating < middle, rating > middle)}


# ---- 6. stock and orders ----

def multi_item_orders(c: EventColumns) -> tuple[int, float]:
    """(orders, share with more than one item): purchases sharing an order_id are one order's items; a
    purchase without one is an order of its own."""
    purchases = c.kind == PURCHASE
    ids = c.order[purchases]
    with_id = ids[ids != NO_ORDER]
    items = np.unique(with_id, return_counts=True)[1]
    orders = int(items.size + (ids == NO_ORDER).sum())
    return orders, _rate((items > 1).sum(), orders)


# ---- 7 and 8. exits and the funnel's rates ----

def session_endings(c: EventColumns, ended: np.ndarray) -> tuple[dict[str, float], float]:
    """(P(the session ends right after the event | its type) over the ended sessions' events, the share of
    whole sessions that hold one event)."""
    order = session_order(c)
    s = c.session[order]
    last = np.ones(order.size, dtype=bool)
    last[:-1] = s[1:] != s[:-1]
    kind, counted = c.kind[order], ended[s]
    rates = {name: _rate((last & counted & (kind == k)).sum(), (counted & (kind == k)).sum())
             for k, name in enumerate(INTERACTION_TYPES)}
    whole = whole_sessions(c, ended)
    size = np.bincount(c.session, minlength=ended.size)
    return rates, _rate((whole & (size == 1)).sum(), whole.sum())


def whole_sessions(c: EventColumns, ended: np.ndarray) -> np.ndarray:
    """Per session number: ended, with its event 1 in the sample."""
    has_first = np.zeros(ended.size, dtype=bool)
    has_first[c.session[c.session_event_index == 1]] = True
    return ended & has_first


def funnel_rates(c: EventColumns, ended: np.ndarray) -> tuple[float, float]:
    """(whole sessions with a purchase, cart abandonment: whole sessions with an add_to_cart and no purchase
    / whole sessions with an add_to_cart)."""
    whole = whole_sessions(c, ended)
    bought = np.zeros(ended.size, dtype=bool)
    bought[c.session[c.kind == PURCHASE]] = True
    carted = np.zeros(ended.size, dtype=bool)
    carted[c.session[c.kind == CART]] = True
    return _rate((whole & bought).sum(), whole.sum()), _rate((whole & carted & ~bought).sum(), (whole & carted).sum())


def measure_signal(c: EventColumns, facts: ProductFacts, funnel: str = DEFAULT_FUNNEL,
                   seed: int = 0) -> SignalFigures:
    """Every figure of the section on the events `c`; `seed` seeds the shuffle of the co-view baseline."""
    n_products = facts.n_products
    train, ended = split_by_time(c.time_ms), ended_sessions(c)
    taste, popular = taste_recommendations(c, train, n_products), popular_products(c, train, n_products)
    hits = {name: hit_rates(c, train, taste, popular, kind) for name, kind in (("view", VIEW), ("purchase", PURCHASE))}
    views = c.kind == VIEW
    shuffled = shuffle_within_category(c.product[views], c.category[views], seed)
    brand_share, brand_chance = same_brand(c.user[views], c.product[views], facts.brand)
    consecutive, across = category_coherence(c)
    carts = cart_rates(c, facts, ended)
    orders, multi = multi_item_orders(c)
    end_rate, single = session_endings(c, ended)
    conversion, abandonment = funnel_rates(c, ended)
    out_of_stock = ~facts.in_stock[c.product]
    figures = SignalFigures(
        funnel=funnel,
        hit_tested={k: v[0] for k, v in hits.items()},
        hit_popular={k: v[1] for k, v in hits.items()},
        hit_taste={k: v[2] for k, v in hits.items()},
        coview_concentration=coview_concentration(c.session[views], c.product[views], n_products),
        coview_concentration_shuffled=coview_concentration(c.session[views], shuffled, n_products),
        same_brand_share=brand_share, same_brand_chance=brand_chance,
        consecutive_same_category=consecutive, cross_session_same_category=across,
        cart_by_duration=carts["duration"], cart_by_budget=carts["budget"], cart_by_rating=carts["rating"],
        out_of_stock_carts=int((out_of_stock & (c.kind == CART)).sum()),
        out_of_stock_purchases=int((out_of_stock & (c.kind == PURCHASE)).sum()),
        orders=orders, multi_item_order_share=multi, has_order_ids=bool((c.order != NO_ORDER).any()),
        end_rate=end_rate, single_event_session_share=single,
        type_share={name: _rate((c.kind == k).sum(), len(c)) for k, name in enumerate(INTERACTION_TYPES)},
        session_conversion=conversion, cart_abandonment=abandonment,
    )
    figures.rows = signal_rows(figures)
    return figures


# ---- the rows ----

def _times(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else ("inf" if a else "n/a")


def _against(a: float, b: float, floor: float, fmt: str = ".2%") -> tuple[str, bool]:
    """"a / b = a/b x" and whether a >= floor x b (False when either is NaN)."""
    return f"{a:{fmt}} / {b:{fmt}} = {_times(a, b)}", bool(a >= floor * b) and b == b


def _recommendation_rows(f: SignalFigures) -> list[Row]:
    rows: list[Row] = []
    for name, plural in (("view", "views"), ("purchase", "purchases")):
        text, ok = _against(f.hit_taste[name], f.hit_popular[name], 1.5)
        rows.append((f"hit-rate@10 of test {plural}: user's taste / popular", ">= 1.5x",
                     f"{text} ({f.hit_tested[name]:,})", ok))
    return rows


def _similarity_rows(f: SignalFigures) -> list[Row]:
    coview, coview_ok = _against(f.coview_concentration, f.coview_concentration_shuffled, 2, ".2f")
    brand, brand_ok = _against(f.same_brand_share, f.same_brand_chance, 3)
    category, category_ok = _against(f.consecutive_same_category, f.cross_session_same_category, 2)
    return [("co-view pair recurrence / shuffled in category", ">= 2x", coview, coview_ok),
            ("same-brand pairs of a user's viewed products / chance", ">= 3x", brand, brand_ok),
            ("consecutive views sharing a category / other sessions", ">= 2x", category, category_ok)]


def _conversion_rows(f: SignalFigures) -> list[Row]:
    duration, duration_ok = _against(f.cart_by_duration[1], f.cart_by_duration[0], 2)
    below, above = f.cart_by_budget[1], f.cart_by_budget[0]
    high, low = f.cart_by_rating[1], f.cart_by_rating[0]
    return [("P(cart|view) top / bottom quintile of duration", ">= 2x", duration, duration_ok),
            ("P(cart|view) below / above the user's median price", "higher below",
             f"{below:.2%} / {above:.2%}", bool(below > above)),
            ("P(cart|view) rating above / below the median", "higher above", f"{high:.2%} / {low:.2%}",
             bool(high > low))]


def _order_rows(f: SignalFigures) -> list[Row]:
    note = "" if f.has_order_ids else "; no order_id: a purchase is an order"
    return [("add_to_carts / purchases of out-of-stock products", "0 / 0",
             f"{f.out_of_stock_carts:,} / {f.out_of_stock_purchases:,}",
             f.out_of_stock_carts == 0 and f.out_of_stock_purchases == 0),
            ("orders with more than one item", ">= 20%", f"{f.multi_item_order_share:.1%} of {f.orders:,}{note}",
             bool(f.multi_item_order_share >= 0.2))]


def _exit_rows(f: SignalFigures) -> list[Row]:
    exits, exits_ok = _against(f.end_rate["purchase"], f.end_rate["view"], 2)
    low, high = SINGLE_EVENT_SESSIONS
    share = f.single_event_session_share
    return [("P(session ends after) purchase / view", ">= 2x", exits, exits_ok),
            ("sessions with a single event", f"about a fifth ({low:.0%}-{high:.0%})", f"{share:.1%}",
             bool(low <= share <= high)),
            ("P(session ends after) view/click/cart/buy/wish %", "information",
             "/".join(f"{f.end_rate[k] * 100:.1f}" for k in INTERACTION_TYPES), None)]


def _retail_rows(f: SignalFigures) -> list[Row]:
    """Judged only when the model runs funnel=retail; otherwise shown for information."""
    judged = f.funnel == "retail"
    note = "" if judged else f" (funnel {f.funnel}: not judged)"
    shares = "/".join(f"{f.type_share[k] * 100:.1f}" for k in RETAIL_SHARES)
    worst = max(abs(f.type_share[k] - target) for k, target in RETAIL_SHARES.items())
    low, high = RETAIL_CONVERSION
    a_low, a_high = RETAIL_ABANDONMENT
    conversion, abandonment = f.session_conversion, f.cart_abandonment
    return [("retail: view/cart/buy % of events", "96.7/2.5/0.8 +-0.5 pp", shares + note,
             bool(worst <= RETAIL_SHARE_TOLERANCE) if judged else None),
            ("retail: sessions with a purchase", f"{low:.0%}-{high:.0%}", f"{conversion:.2%}{note}",
             bool(low <= conversion <= high) if judged else None),
            ("retail: cart abandonment", f"{a_low:.0%}-{a_high:.0%}", f"{abandonment:.1%}{note}",
             bool(a_low <= abandonment <= a_high) if judged else None)]


def signal_rows(f: SignalFigures) -> list[Row]:
    """(figure, target, measured, passed or None for information), in the report's format."""
    return (_recommendation_rows(f) + _similarity_rows(f) + _conversion_rows(f) + _order_rows(f) + _exit_rows(f)
            + _retail_rows(f))


def signal_failed_rows(f: SignalFigures) -> list[str]:
    return [name for name, _t, _m, ok in f.rows if ok is False]
