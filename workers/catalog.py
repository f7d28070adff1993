"""The simulated store: users and products, built once at start-up from the seed.

numpy assigns every attribute; Faker only fills small pools of names (users' and brands') when a
process needs to render them (the users stream), so a worker that only emits interactions never
imports it. Equal `ModelConfig`s give equal catalogs in every process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

from .model import (
    CATEGORIES,
    CATEGORY_PRICES,
    CATEGORY_WEIGHTS,
    DEVICE_PROFILES,
    POPULARITY_EXPONENT,
    SEGMENT_ORDERS,
    SEGMENT_SPEND,
    SEGMENT_WEIGHTS,
    SEGMENTS,
    ModelConfig,
)
from .places import City

GENDERS: tuple[str, ...] = ("female", "male", "non-binary")
# Users registered over the five years before the catalog's reference date.
REGISTRATION_SPAN_DAYS = 5 * 365
PRODUCT_TAGS: tuple[tuple[str, ...], ...] = (
    ("wireless", "4k", "bluetooth", "refurbished", "smart", "portable"),
    ("cotton", "slim-fit", "summer", "winter", "organic", "sale"),
    ("kitchen", "garden", "decor", "furniture", "eco", "storage"),
    ("skincare", "vegan", "fragrance", "makeup", "cruelty-free", "spf"),
    ("outdoor", "fitness", "running", "yoga", "camping", "cycling"),
    ("fiction", "non-fiction", "bestseller", "hardcover", "paperback", "kids"),
    ("educational", "stem", "puzzle", "outdoor", "plush", "ages-3+"),
    ("oem", "tools", "interior", "exterior", "tires", "performance"),
    ("organic", "fresh", "gluten-free", "snack", "beverage", "bulk"),
    ("vitamins", "supplement", "first-aid", "wellness", "sleep", "protein"),
)
PRODUCT_NOUNS: tuple[tuple[str, ...], ...] = (
    ("Laptop", "Smartphone", "Headphones", "Monitor", "Tablet", "Smartwatch", "Camera", "Speaker"),
    ("T-Shirt", "Jeans", "Sneakers", "Jacket", "Dress", "Hoodie", "Sweater", "Boots"),
    ("Sofa", "Lamp", "Blender", "Rug", "Cookware Set", "Bookshelf", "Planter", "Vacuum"),
    ("Moisturizer", "Serum", "Lipstick", "Perfume", "Shampoo", "Sunscreen", "Face Mask", "Eyeliner"),
    ("Yoga Mat", "Dumbbells", "Tent", "Bike Helmet", "Running Shoes", "Backpack", "Water Bottle", "Racket"),
    ("Novel", "Cookbook", "Biography", "Thriller", "Atlas", "Poetry Collection", "Textbook", "Comic"),
    ("Building Blocks", "Puzzle", "Doll", "RC Car", "Board Game", "Plush Bear", "Science Kit", "Train Set"),
    ("Floor Mats", "Dash Cam", "Wiper Blades", "Car Charger", "Seat Covers", "Tool Kit", "Tire Gauge", "Jump Starter"),
    ("Coffee Beans", "Olive Oil", "Granola", "Green Tea", "Pasta", "Dark Chocolate", "Honey", "Trail Mix"),
    ("Multivitamin", "Protein", "First Aid Kit", "Thermometer", "Fish Oil", "Melatonin", "Probiotic", "Heating Pad"),
)
ADJECTIVES: tuple[str, ...] = (
    "Classic", "Premium", "Essential", "Ultra", "Eco", "Pro", "Compact", "Deluxe", "Everyday", "Signature",
)
BRANDS_PER_CATEGORY = 40


@dataclass(frozen=True)
class Names:
    """Pools of human-readable names; only the users stream needs them."""

    first_names_female: tuple[str, ...]
    first_names_male: tuple[str, ...]
    last_names: tuple[str, ...]
    email_domains: tuple[str, ...]
    brands: tuple[str, ...]  # BRANDS_PER_CATEGORY per category, in CATEGORIES order


@dataclass
class Catalog:
    """Users and products as parallel numpy arrays (index == id number)."""

    config: ModelConfig
    cities: tuple[City, ...]
    # users
    user_segment: np.ndarray  # int8, index into SEGMENTS
    user_age: np.ndarray  # int16
    user_gender: np.ndarray  # int8, index into GENDERS
    user_city: np.ndarray  # int32, index into cities
    user_profile: np.ndarray  # int8, index into DEVICE_PROFILES
    user_prefs: np.ndarray  # int8 (n, 4): preferred categories; only the first user_pref_count are used
    user_pref_count: np.ndarray  # int8, 1..4
    user_registered_days_ago: np.ndarray  # int32
    user_active_days_ago: np.ndarray  # int32, <= registered
    user_total_spent_cents: np.ndarray  # int64
    user_order_count: np.ndarray  # int32
    # products
    product_category: np.ndarray  # int8, index into CATEGORIES
    product_price_cents: np.ndarray  # int64
    product_brand: np.ndarray  # int16, index into Names.brands
    product_noun: np.ndarray  # int8
    product_adjective: np.ndarray  # int8
    product_rating_tenths: np.ndarray  # int16, 30..50
    product_review_count: np.ndarray  # int32
    product_in_stock: np.ndarray  # bool
    product_tags: np.ndarray  # int8 (n, 2)
    product_popularity: np.ndarray  # float64, sums to 1
    # Sampling by popularity within a category: products grouped by category, with one Walker alias table
    # per category (see pick_products).
    category_products: np.ndarray = field(repr=False)  # int32, products grouped by category
    category_bounds: np.ndarray = field(repr=False)  # int64 (n_categories + 1,)
    alias_accept: np.ndarray = field(repr=False)  # float64, per slot of category_products
    alias_other: np.ndarray = field(repr=False)  # int64, slot to take when not accepted
    names: Names | None = None

    @property
    def n_users(self) -> int:
        return int(self.user_segment.size)

    @property
    def n_products(self) -> int:
        return int(self.product_category.size)

    @classmethod
    def build(cls, config: ModelConfig, cities: tuple[City, ...], with_names: bool = False) -> Catalog:
        rng = np.random.default_rng([config.seed, 0xCA7A])
        n_users, n_products = config.max_users, config.max_products

        segment = rng.choice(len(SEGMENT_WEIGHTS), size=n_users, p=SEGMENT_WEIGHTS).astype(np.int8)
        age = np.clip(np.rint(rng.normal(38, 13, n_users)), 18, 80).astype(np.int16)
        gender = rng.choice(3, size=n_users, p=(0.49, 0.49, 0.02)).astype(np.int8)
        population = np.array([c.population for c in cities], dtype=np.float64)
        city = rng.choice(len(cities), size=n_users, p=population / population.sum()).astype(np.int32)
        profile_share = np.array([p[3] for p in DEVICE_PROFILES])
        profile = rng.choice(len(DEVICE_PROFILES), size=n_users, p=profile_share / profile_share.sum())

        # 1-4 distinct preferred categories: the first k of a random permutation per user.
        prefs = np.argsort(rng.random((n_users, len(CATEGORIES))), axis=1)[:, :4].astype(np.int8)
        pref_count = rng.integers(1, 5, n_users).astype(np.int8)

        orders_lo = np.array([r[0] for r in SEGMENT_ORDERS])[segment]
        orders_hi = np.array([r[1] for r in SEGMENT_ORDERS])[segment]
        orders = rng.integers(orders_lo, orders_hi + 1).astype(np.int32)
        spend_lo = np.array([r[0] for r in SEGMENT_SPEND])[segment] * 100
        spend_hi = np.array([r[1] for r in SEGMENT_SPEND])[segment] * 100
        spent = rng.integers(spend_lo, spend_hi + 1).astype(np.int64)
        # Consistency: no orders means nothing spent; some orders mean at least a dollar each.
        spent = np.where(orders == 0, 0, np.maximum(spent, orders.astype(np.int64) * 100))

        registered = rng.integers(0, REGISTRATION_SPAN_DAYS, n_users).astype(np.int32)
        active = (registered * rng.random(n_users) ** 3).astype(np.int32)  # most were active recently

        category = rng.choice(len(CATEGORIES), size=n_products, p=CATEGORY_WEIGHTS).astype(np.int8)
        lo = np.array([p[0] for p in CATEGORY_PRICES], dtype=np.float64)[category]
        hi = np.array([p[1] for p in CATEGORY_PRICES], dtype=np.float64)[category]
        # Log-uniform: cheap items are more common than expensive ones in every category.
        dollars = np.exp(rng.uniform(np.log(lo), np.log(hi)))
        cents = np.floor(dollars).astype(np.int64) * 100 + rng.choice([99, 99, 49, 0, 95], size=n_products)
        cents = np.clip(cents, (lo * 100).astype(np.int64), (hi * 100).astype(np.int64))
        brand = (category.astype(np.int16) * BRANDS_PER_CATEGORY
                 + rng.integers(0, BRANDS_PER_CATEGORY, n_products)).astype(np.int16)
        rating = np.clip(np.rint(rng.beta(5, 2, n_products) * 20 + 30), 30, 50).astype(np.int16)
        # Zipf-like popularity: rank r (random over products) draws weight (r + 1) ** -s.
        rank = rng.permutation(n_products)
        popularity = (rank + 1.0) ** -POPULARITY_EXPONENT
        popularity /= popularity.sum()
        reviews = np.floor(popularity * n_products * 40 * rng.uniform(0.5, 1.5, n_products)).astype(np.int32)
        in_stock = rng.random(n_products) < 0.93
        tags = rng.integers(0, 6, (n_products, 2)).astype(np.int8)
        noun = rng.integers(0, 8, n_products).astype(np.int8)
        adjective = rng.integers(0, len(ADJECTIVES), n_products).astype(np.int8)

        order = np.argsort(category, kind="stable").astype(np.int32)
        bounds = np.searchsorted(category[order], np.arange(len(CATEGORIES) + 1)).astype(np.int64)
        accept = np.ones(n_products, dtype=np.float64)
        other = np.arange(n_products, dtype=np.int64)
        for c in range(len(CATEGORIES)):
            a, b = int(bounds[c]), int(bounds[c + 1])
            if b > a:
                accept[a:b], local = _alias_table(popularity[order[a:b]])
                other[a:b] = a + local

        return cls(
            config=config, cities=cities,
            user_segment=segment, user_age=age, user_gender=gender, user_city=city,
            user_profile=profile.astype(np.int8), user_prefs=prefs, user_pref_count=pref_count,
            user_registered_days_ago=registered, user_active_days_ago=active,
            user_total_spent_cents=spent, user_order_count=orders,
            product_category=category, product_price_cents=cents, product_brand=brand,
            product_noun=noun, product_adjective=adjective, product_rating_tenths=rating,
            product_review_count=reviews, product_in_stock=in_stock, product_tags=tags,
            product_popularity=popularity,
            category_products=order, category_bounds=bounds, alias_accept=accept, alias_other=other,
            names=build_names(config.seed) if with_names else None,
        )

    def pick_products(self, category: np.ndarray, u_slot: np.ndarray, u_accept: np.ndarray) -> np.ndarray:
        """Products drawn by popularity within the given categories (u_* uniform in [0, 1), independent).

        Walker's alias method: O(1) per draw. A binary search of a cumulative table over 50,000 products
        cost 30 % of generation time (random access misses the cache); this is about 5x cheaper.
        A category with no product (tiny catalogs) falls back to the whole catalog.
        """
        start = self.category_bounds[category]
        size = self.category_bounds[category + 1] - start
        empty = size == 0
        start = np.where(empty, 0, start)
        size = np.where(empty, self.n_products, size)
        slot = start + (u_slot * size).astype(np.int64)
        slot = np.where(u_accept < self.alias_accept[slot], slot, self.alias_other[slot])
        products: np.ndarray = self.category_products[slot]
        return products

    # ---- rendering helpers shared by the users stream and the encoder ----

    def user_id(self, user: int) -> str:
        return f"u{user:08d}"

    def product_id(self, product: int) -> str:
        return f"p{product:07d}"

    def user_record(self, user: int, as_of: date) -> dict[str, object]:
        """One user as the users stream serves it (the original's fields, same names)."""
        assert self.names is not None, "build the catalog with_names=True to render users"
        names = self.names
        gender = GENDERS[int(self.user_gender[user])]
        pool = names.first_names_male if gender == "male" else names.first_names_female
        if gender == "non-binary" and user % 2:
            pool = names.first_names_male
        first = pool[(user * 7919) % len(pool)]
        last = names.last_names[(user * 104729) % len(names.last_names)]
        domain = names.email_domains[user % len(names.email_domains)]
        city = self.cities[int(self.user_city[user])]
        profile = DEVICE_PROFILES[int(self.user_profile[user])]
        registered = as_of - timedelta(days=int(self.user_registered_days_ago[user]))
        active = as_of - timedelta(days=int(self.user_active_days_ago[user]))
        count = int(self.user_pref_count[user])
        return {
            "user_id": self.user_id(user),
            # The user number makes every email unique, whatever the name pools hold.
            "email": f"{first}.{last}{user}@{domain}".lower().replace(" ", ""),
            "first_name": first,
            "last_name": last,
            "age": int(self.user_age[user]),
            "gender": gender,
            "location": f"{city.name}, {city.country_name}",
            "country": city.country_code,
            "city": city.name,
            "user_segment": SEGMENTS[int(self.user_segment[user])],
            "registration_date": registered.isoformat(),
            "last_active": active.isoformat(),
            "total_spent": int(self.user_total_spent_cents[user]) / 100,
            "order_count": int(self.user_order_count[user]),
            "preferences": [CATEGORIES[int(c)] for c in self.user_prefs[user, :count]],
            "device_type": profile[0],
            "browser": profile[1],
        }

    def product_record(self, product: int) -> dict[str, object]:
        """One product with its name and brand (needs names)."""
        assert self.names is not None, "build the catalog with_names=True to render products"
        category = int(self.product_category[product])
        brand = self.names.brands[int(self.product_brand[product])]
        return {
            "product_id": self.product_id(product),
            "name": f"{brand} {ADJECTIVES[int(self.product_adjective[product])]} "
            f"{PRODUCT_NOUNS[category][int(self.product_noun[product])]}",
            "category": CATEGORIES[category],
            "price": int(self.product_price_cents[product]) / 100,
            "brand": brand,
            "rating": int(self.product_rating_tenths[product]) / 10,
            "review_count": int(self.product_review_count[product]),
            "in_stock": bool(self.product_in_stock[product]),
            "tags": sorted({PRODUCT_TAGS[category][int(t)] for t in self.product_tags[product]}),
            "popularity": float(self.product_popularity[product]),
        }


def _alias_table(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vose's alias table for sampling index i with probability weights[i] / sum(weights)."""
    n = weights.size
    scaled = weights * (n / weights.sum())
    accept = np.ones(n)
    other = np.arange(n)
    small = [i for i in range(n) if scaled[i] < 1.0]
    large = [i for i in range(n) if scaled[i] >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        accept[s], other[s] = scaled[s], g
        scaled[g] -= 1.0 - scaled[s]
        (small if scaled[g] < 1.0 else large).append(g)
    return accept, other


def build_names(seed: int) -> Names:
    """Faker fills the pools once; everything else indexes into them."""
    from faker import Faker  # imported lazily: workers that only emit interactions never need it

    fake = Faker("en_US")
    fake.seed_instance(seed)
    female = tuple(sorted({fake.first_name_female() for _ in range(1500)}))
    male = tuple(sorted({fake.first_name_male() for _ in range(1500)}))
    last = tuple(sorted({fake.last_name() for _ in range(3000)}))
    brands: list[str] = []
    seen: set[str] = set()
    while len(brands) < len(CATEGORIES) * BRANDS_PER_CATEGORY:
        name = fake.last_name() + " " + fake.random_element(("Co", "Labs", "Works", "Goods", "& Sons", "Brands"))
        if name not in seen:
            seen.add(name)
            brands.append(name)
    domains = ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "hotmail.com", "proton.me")
    return Names(female, male, last, domains, tuple(brands))
