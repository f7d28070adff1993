"""What a session is after, and which products it looks at.

Intent
------
A session has a purpose: a category (one of the user's preferred categories in PREFERENCE_SHARE of
sessions, else any by the catalog's shares), a subcategory (the user's favourite one in that category in
FAVOURITE_SHARE of sessions, a lasting taste; else any by its size) and a price tier (the user's own in
OWN_TIER_SHARE of sessions, else any). A user's price tier depends on the segment (premium users buy
premium). In consumable categories (grocery, health, beauty) half of the sessions open on the user's
staple product of the subcategory, so staples are bought again at intervals.

Products
--------
After a session's first product, SIMILAR_SHARE of its new products are of the family of the product before
(its variants, assortment.py: "viewed X, also viewed Y"). Otherwise each new product (a view or a click)
is in the session's group (category, subcategory, tier) with chance SAME_GROUP, in the same category and
tier but another subcategory with chance SAME_CATEGORY, else anywhere (a detour). A product the session
is about to add to its cart comes from the cart table (in stock, rating-weighted: assortment.py) and, when
priced above the user's tier, usually at the user's tier instead (STAY_IN_BUDGET): what shoppers put in
carts is what they can afford.
Everything is a pure function of the user and of per-session and per-event hash words.
"""

from __future__ import annotations

import itertools

import numpy as np

from .assortment import SIMILAR_PER_PRODUCT, SUBCATEGORY_SHARES, TIER_SHARES, group_of
from .catalog import Catalog
from .model import CATEGORIES, CATEGORY_WEIGHTS, PREFERENCE_SHARE, SEGMENTS, SUBCATEGORIES_PER_CATEGORY
from .rng import derive_key, hash_positions, lane_bits, unit, unit_threshold
from .shares import SHARE_TABLE_SIZE, draw_by_share, draw_lane, rest_of, share_table

FAVOURITE_SHARE = 0.6
OWN_TIER_SHARE = 0.75
SIMILAR_SHARE = 0.6
SAME_GROUP = 0.6
SAME_CATEGORY = 0.25
STAY_IN_BUDGET = 0.75
CONSUMABLES = tuple(CATEGORIES.index(c) for c in ("grocery", "health", "beauty"))
# A user's price tier (budget, mid, premium) by segment.
USER_TIER_SHARES: dict[str, tuple[float, float, float]] = {
    "casual": (0.6, 0.3, 0.1), "regular": (0.45, 0.4, 0.15), "power": (0.3, 0.45, 0.25),
    "premium": (0.12, 0.38, 0.5),
}


class Intents:
    """Per-user taste and per-session intent of one store, and the products sessions choose."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        seed = catalog.config.seed
        self._k_tier, self._k_taste, self._k_staple = (derive_key(seed, 0x7A57E, p) for p in range(3))
        self._category = share_table(list(CATEGORY_WEIGHTS))
        self._rank = share_table(SUBCATEGORY_SHARES)
        self._tier = share_table(TIER_SHARES)
        self._user_tier = np.stack([share_table(USER_TIER_SHARES[s]) for s in SEGMENTS])

    def price_tier(self, user: np.ndarray, segment: np.ndarray) -> np.ndarray:
        """The user's price tier (index into TIERS)."""
        word = hash_positions(self._k_tier, np.asarray(user, dtype=np.uint64))
        return np.asarray(self._user_tier[segment, (unit(word, 0) * SHARE_TABLE_SIZE).astype(np.intp)])

    def session_intent(self, user: np.ndarray, user_tier: np.ndarray, word: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(category, subcategory, tier) of each session, from its user and one hash word."""
        prefs, count = self.catalog.users.preferences(user)
        u_category = unit(word, 0)
        preferred = u_category < PREFERENCE_SHARE
        slot = np.minimum((u_category / PREFERENCE_SHARE * count).astype(np.int64), 3)
        other = rest_of(u_category, PREFERENCE_SHARE)
        category = np.where(preferred, prefs[np.arange(user.size), slot], draw_by_share(self._category, other))
        category = category.astype(np.int64)
        taste = hash_positions(self._k_taste, (np.asarray(user, np.int64) * 16 + category).astype(np.uint64))
        u_sub = unit(word, 1)
        favourite = u_sub < FAVOURITE_SHARE
        rank = np.where(favourite, draw_by_share(self._rank, unit(taste, 0)),
                        draw_by_share(self._rank, rest_of(u_sub, FAVOURITE_SHARE)))
        subcategory = self.catalog.subcategory_order[category, rank]
        u_tier = unit(word, 2)
        tier = np.where(u_tier < OWN_TIER_SHARE, user_tier,
                        draw_by_share(self._tier, rest_of(u_tier, OWN_TIER_SHARE)))
        return category, subcategory.astype(np.int64), tier.astype(np.int64)

    def opens_on_staple(self, category: np.ndarray, word: np.ndarray) -> np.ndarray:
        """Sessions of a consumable category that open on the user's staple (bit 63 of the session's word)."""
        return np.asarray(np.isin(category, CONSUMABLES) & ((word >> np.uint64(63)) == np.uint64(0)))

    def staple(self, user: np.ndarray, group: np.ndarray) -> np.ndarray:
        """The user's staple product of a group: the same product every time (from the cart table)."""
        word = hash_positions(self._k_staple, (np.asarray(user, np.int64) * 1024 + group).astype(np.uint64))
        return self.catalog.carts.pick(group, unit(word, 0), lane_bits(word, 1))

    def follow_similar(self, chosen: np.ndarray, ordinal: np.ndarray, for_cart: np.ndarray, word: np.ndarray
                       ) -> None:
        """In place, over a session's new products in order (`ordinal` 0, 1 ... within each session, sessions
        contiguous): SIMILAR_SHARE of them become one of the products similar to the one before
        (assortment.similar_products), when it can be carted if it is about to be."""
        u = unit(word, 2)
        k = np.minimum((u * (SIMILAR_PER_PRODUCT / SIMILAR_SHARE)).astype(np.intp), SIMILAR_PER_PRODUCT - 1)
        follows = np.flatnonzero((u < SIMILAR_SHARE) & (ordinal > 0))
        follows = follows[np.argsort(ordinal[follows], kind="stable")]  # a product's predecessor goes first
        bounds = np.searchsorted(ordinal[follows], np.arange(1, int(ordinal.max(initial=0)) + 2))
        # Gathered once in that order, so each ordinal's pass slices them; one flat gather of the similar
        # products (a 2-d fancy index takes numpy's slow path).
        column, free = k[follows], ~for_cart[follows]
        similar_flat = self.catalog.similar.ravel()
        for a, b in itertools.pairwise(bounds):
            at = follows[a:b]
            similar = similar_flat[chosen[at - 1].astype(np.intp) * SIMILAR_PER_PRODUCT + column[a:b]]
            usable = free[a:b] | self.catalog.product_in_stock[similar]
            chosen[at] = np.where(usable, similar, chosen[at])

    def choose(self, intent: tuple[np.ndarray, np.ndarray, np.ndarray], user_tier: np.ndarray,
               for_cart: np.ndarray, words: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
        """A new product for each listed event, given its session's intent, the user's tier, whether it is about
        to be carted, and three hash words per event."""
        category, subcategory, tier = intent
        w1, w2, w3 = words
        mode = lane_bits(w1, 0)  # unit(w1, 0), compared as bits
        elsewhere = mode >= unit_threshold(SAME_GROUP + SAME_CATEGORY)
        moved = mode >= unit_threshold(SAME_GROUP)
        any_rank = draw_lane(self._rank, w1, 1)
        category = np.where(elsewhere, draw_lane(self._category, w1, 2), category)
        # One flat gather: a 2-d fancy index takes numpy's slow path.
        any_subcategory = self.catalog.subcategory_order.ravel()[category * SUBCATEGORIES_PER_CATEGORY + any_rank]
        subcategory = np.where(moved, any_subcategory, subcategory)
        tier = np.where(elsewhere, draw_lane(self._tier, w3, 0), tier)
        stays_in_budget = lane_bits(w3, 1) < unit_threshold(STAY_IN_BUDGET)  # unit(w3, 1) < STAY_IN_BUDGET
        tier = np.where(for_cart & (tier > user_tier) & stays_in_budget, user_tier, tier)
        group = group_of(category, subcategory, tier)
        u_slot, accept_bits = unit(w2, 0), lane_bits(w2, 1)
        chosen = self.catalog.browse.pick(group, u_slot, accept_bits)
        carted = np.flatnonzero(for_cart)
        chosen[carted] = self.catalog.carts.pick(group[carted], u_slot[carted], accept_bits[carted])
        return chosen

