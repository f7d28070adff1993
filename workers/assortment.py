"""The store's products: what they are (category, subcategory, price tier, brand) and how sessions draw them.

Structure a recommender can learn
---------------------------------
Each category has SUBCATEGORIES_PER_CATEGORY subcategories of unequal size (a store has more phones than
cameras), and each product a price tier (budget, mid, premium): its price sits in the tier's band of
its subcategory's price level, inside the category's price range. Brands have a tier and a home category,
and span related categories (a sports brand also sells clothing and health products): most products
carry a brand of their own category, some one of a related category, always of their tier. Popularity is
Zipf-like over the whole catalog, so it stays skewed within every group.

Products of a group come in families of three (variants of one item, `similar_products`), which sessions
browse together. Sessions draw products per group = (category, subcategory, tier), by popularity (Walker alias tables,
O(1) a draw): one table for browsing, one for products about to be added to a cart, weighted also by
rating and holding only products in stock (behaviour.py chooses a product knowing what the session does
with it, so P(add_to_cart | view) rises with the rating and no out-of-stock product is ever carted).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .model import CATEGORIES, CATEGORY_PRICES, CATEGORY_WEIGHTS, POPULARITY_EXPONENT, SUBCATEGORIES_PER_CATEGORY
from .rng import UNIT_BITS, derive_key, hash_positions

TIERS: tuple[str, ...] = ("budget", "mid", "premium")
TIER_SHARES: tuple[float, ...] = (0.45, 0.35, 0.20)
# Subcategory sizes, largest first; each category takes them in its own (seeded) order.
SUBCATEGORY_SHARES: tuple[float, ...] = (0.22, 0.18, 0.15, 0.12, 0.10, 0.09, 0.08, 0.06)
# Categories whose brands also sell in this one.
RELATED_CATEGORIES: dict[str, tuple[str, ...]] = {
    "electronics": ("home", "automotive", "toys"), "clothing": ("sports", "beauty"),
    "home": ("electronics", "grocery"), "beauty": ("health", "clothing"), "sports": ("clothing", "health"),
    "books": ("toys",), "toys": ("books", "electronics"), "automotive": ("electronics", "sports"),
    "grocery": ("health", "home"), "health": ("beauty", "grocery", "sports"),
}
HOME_BRAND_SHARE = 0.75
BRANDS_PER_CATEGORY = 40
BRAND_TIER_COUNTS = (18, 14, 8)  # of a category's 40 brands: budget, mid, premium
N_GROUPS = len(CATEGORIES) * SUBCATEGORIES_PER_CATEGORY * len(TIERS)


def group_of(category: np.ndarray, subcategory: np.ndarray, tier: np.ndarray) -> np.ndarray:
    """The sampling group of (category, subcategory, tier)."""
    return np.asarray((category.astype(np.int64) * SUBCATEGORIES_PER_CATEGORY + subcategory) * len(TIERS) + tier)


@dataclass
class Assortment:
    category: np.ndarray  # int8, index into CATEGORIES
    subcategory: np.ndarray  # int8, 0..7 within the category (the noun of its name)
    tier: np.ndarray  # int8, index into TIERS
    brand: np.ndarray  # int16: home category * 40 + index (see BRAND_TIER_COUNTS)
    price_cents: np.ndarray  # int64
    rating_tenths: np.ndarray  # int16, 30..50
    in_stock: np.ndarray  # bool
    popularity: np.ndarray  # float64, sums to 1
    subcategory_order: np.ndarray  # int8 (categories, 8): subcategory of each SUBCATEGORY_SHARES rank

    @classmethod
    def build(cls, rng: np.random.Generator, n: int) -> Assortment:
        category = rng.choice(len(CATEGORIES), size=n, p=CATEGORY_WEIGHTS).astype(np.int8)
        order = np.stack([rng.permutation(SUBCATEGORIES_PER_CATEGORY) for _ in CATEGORIES]).astype(np.int8)
        rank = rng.choice(SUBCATEGORIES_PER_CATEGORY, size=n, p=SUBCATEGORY_SHARES)
        subcategory = order[category, rank]
        tier = rng.choice(len(TIERS), size=n, p=TIER_SHARES).astype(np.int8)
        level = rng.uniform(0.2, 0.8, (len(CATEGORIES), SUBCATEGORIES_PER_CATEGORY))[category, subcategory]
        cents = _prices(rng, category, np.clip(level + 0.22 * (tier - 1.0) + rng.normal(0, 0.06, n), 0, 1))
        rating = np.clip(np.rint(rng.beta(5, 2, n) * 20 + 30), 30, 50).astype(np.int16)
        rank_of_product = rng.permutation(n)
        popularity = (rank_of_product + 1.0) ** -POPULARITY_EXPONENT
        popularity /= popularity.sum()
        in_stock = rng.random(n) < 0.93
        return cls(category, subcategory.astype(np.int8), tier, _brands(rng, category, tier), cents, rating,
                   in_stock, popularity, order)


def cart_weight(popularity: np.ndarray, rating_tenths: np.ndarray, in_stock: np.ndarray) -> np.ndarray:
    """How likely each product is to be the one carted: popularity x the rating's appeal ((rating - 2.5) /
    2.5)^3, so 4.5 stars is carted ~2.4x as readily as 4.0; 0 when out of stock."""
    return np.asarray(popularity * ((rating_tenths.astype(np.float64) - 25) / 25) ** 3 * in_stock)


def _prices(rng: np.random.Generator, category: np.ndarray, position: np.ndarray) -> np.ndarray:
    """Prices at `position` (0..1) of each category's log price range, ending .99, .49, .00 or .95."""
    lo = np.array([p[0] for p in CATEGORY_PRICES], dtype=np.float64)[category]
    hi = np.array([p[1] for p in CATEGORY_PRICES], dtype=np.float64)[category]
    dollars = np.exp(np.log(lo) + position * (np.log(hi) - np.log(lo)))
    cents = np.floor(dollars).astype(np.int64) * 100 + rng.choice([99, 99, 49, 0, 95], size=category.size)
    return np.asarray(np.clip(cents, (lo * 100).astype(np.int64), (hi * 100).astype(np.int64)))


def _brands(rng: np.random.Generator, category: np.ndarray, tier: np.ndarray) -> np.ndarray:
    """A brand of the product's tier, from its own category (HOME_BRAND_SHARE) or a related one."""
    related = [[CATEGORIES.index(r) for r in RELATED_CATEGORIES[c]] for c in CATEGORIES]
    pick = rng.random(category.size)
    source = category.astype(np.int64).copy()
    away = pick >= HOME_BRAND_SHARE
    choice = ((pick - HOME_BRAND_SHARE) / (1 - HOME_BRAND_SHARE) * 3).astype(np.int64)
    table = np.array([[r[i % len(r)] for i in range(3)] for r in related], dtype=np.int64)
    source[away] = table[category[away], np.minimum(choice[away], 2)]
    first = np.concatenate([[0], np.cumsum(BRAND_TIER_COUNTS)[:-1]])[tier]
    # Within a tier, bigger brands carry more products (weights 1/(k+1)).
    counts = np.asarray(BRAND_TIER_COUNTS)[tier]
    within = np.floor(counts ** rng.random(category.size)).astype(np.int64) - 1
    return np.asarray(source * BRANDS_PER_CATEGORY + first + np.minimum(within, counts - 1)).astype(np.int16)


FAMILY_SIZE = 3
SIMILAR_PER_PRODUCT = FAMILY_SIZE - 1


def similar_products(group: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """((products, SIMILAR_PER_PRODUCT) int32: the other members of each product's family; each product's
    family head, the member whose brand the family carries). Products of a group
    come in families of FAMILY_SIZE (variants of one item: a random partition of the group), and sessions go
    from a product to one of its family ("viewed X, also viewed Y"), so the same pairs recur across sessions
    far more than popularity alone would make them. A group's last family may be smaller: its members
    repeat."""
    n = group.size
    order = np.lexsort((hash_positions(derive_key(seed, 0x51A1), np.arange(n, dtype=np.uint64)), group))
    index = np.arange(n)
    first_of_group = np.concatenate([[True], group[order][1:] != group[order][:-1]]) if n else index.astype(bool)
    in_group = index - np.maximum.accumulate(np.where(first_of_group, index, 0))
    family_start = index - in_group % FAMILY_SIZE
    group_end = np.append(np.flatnonzero(first_of_group)[1:], n)[np.cumsum(first_of_group) - 1]
    size = np.minimum(FAMILY_SIZE, group_end - family_start)
    similar = np.empty((n, SIMILAR_PER_PRODUCT), dtype=np.int32)
    for j in range(1, FAMILY_SIZE):
        similar[order, j - 1] = order[family_start + (in_group % FAMILY_SIZE + j) % size]
    head = np.empty(n, dtype=np.int64)
    head[order] = order[family_start]
    return similar, head


class GroupSampler:
    """Products grouped by key, drawn by weight within a group (Walker's alias method: O(1) a draw).

    A binary search of a cumulative table over 50,000 products cost 30 % of generation time (random access
    misses the cache); an alias table is about 5x cheaper. An empty group (tiny catalogs) falls back to all
    the sampler's products."""

    def __init__(self, key: np.ndarray, weight: np.ndarray, n_keys: int) -> None:
        members = np.flatnonzero(weight > 0)
        if members.size == 0:  # no product qualifies (a tiny catalog): draw from all
            members = np.arange(weight.size)
            weight = np.ones(weight.size)
        order = members[np.argsort(key[members], kind="stable")]
        self.products = order.astype(np.int32)
        self.bounds = np.searchsorted(key[order], np.arange(n_keys + 1)).astype(np.int64)
        self.accept = np.ones(order.size)
        self.other = np.arange(order.size, dtype=np.int64)
        for g in range(n_keys):
            a, b = int(self.bounds[g]), int(self.bounds[g + 1])
            if b > a:
                self.accept[a:b], local = _alias_table(weight[order[a:b]])
                self.other[a:b] = a + local
        # As bits: unit(w, lane) < accept exactly when lane_bits(w, lane) < ceil(accept * 2**21).
        self.accept_bits = np.ceil(self.accept * (1 << UNIT_BITS)).astype(np.uint32)
        self.n = order.size
        # Per key, where its draws come from: the group's products, or all of them when it has none.
        size = np.diff(self.bounds)
        self._start = np.where(size == 0, 0, self.bounds[:-1])
        self._size = np.where(size == 0, self.n, size)

    def pick(self, key: np.ndarray, u_slot: np.ndarray, accept_bits: np.ndarray) -> np.ndarray:
        """A product of each key's group: `u_slot` a uniform, `accept_bits` another's rng.lane_bits."""
        key = np.asarray(key).astype(np.intp, copy=False)
        slot = self._start[key] + (u_slot * self._size[key]).astype(np.int64)
        slot = np.where(accept_bits < self.accept_bits[slot], slot, self.other[slot])
        return np.asarray(self.products[slot])


def _alias_table(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vose's alias table for sampling index i with probability weights[i] / sum(weights). On Python lists:
    indexing numpy scalars one at a time was three times slower."""
    n = weights.size
    scaled: list[float] = (weights * (n / weights.sum())).tolist()
    accept = [1.0] * n
    other = list(range(n))
    small = [i for i, w in enumerate(scaled) if w < 1.0]
    large = [i for i, w in enumerate(scaled) if w >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        accept[s], other[s] = scaled[s], g
        scaled[g] -= 1.0 - scaled[s]
        (small if scaled[g] < 1.0 else large).append(g)
    return np.array(accept), np.array(other, dtype=np.int64)
