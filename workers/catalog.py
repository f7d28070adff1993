"""The simulated store: products built once at start-up from the seed, users as pure functions (users.py).

numpy assigns every product attribute; users cost no memory (10M users are as cheap as 1,000). Faker
only fills small pools of users' names (people.py) when a process needs to render users (the users
stream), so a worker that only emits interactions never imports it; brand names come from brands.py.
Equal `ModelConfig`s give equal catalogs in every process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property

import numpy as np

from .assortment import N_GROUPS, TIERS, Assortment, GroupSampler, cart_weight, group_of, similar_products
from .brands import brand_names, series_name
from .funnel import MEAN_CART_QUANTITY, calibration
from .model import (
    CATEGORIES,
    CHURN_HORIZON_MS,
    DEVICE_PROFILES,
    MS_PER_DAY,
    SEGMENTS,
    ModelConfig,
)
from .people import PersonNames, email_address, email_number, person_names
from .places import City
from .rng import derive_key, hash_positions, unit
from .users import CLASS_TIER, GENDERS, USER_ID_CAPACITY, Users, as_of_ms, iso_ms

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

    people: dict[str, PersonNames]  # by ISO country code: names from the country's Faker locale
    brands: tuple[str, ...]  # BRANDS_PER_CATEGORY per category, in CATEGORIES order


@dataclass
class Catalog:
    """Users and products as parallel numpy arrays (index == id number)."""

    config: ModelConfig
    cities: tuple[City, ...]
    users: Users  # pure functions of (seed, user id): see users.py
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
    product_tier: np.ndarray  # int8, index into assortment.TIERS
    # How sessions draw products: by group (category, subcategory, tier), see assortment.py.
    browse: GroupSampler = field(repr=False)
    carts: GroupSampler = field(repr=False)  # in stock only, weighted by rating too
    subcategory_order: np.ndarray = field(repr=False)  # int8 (categories, 8), largest subcategory first
    similar: np.ndarray = field(repr=False)  # int32 (products, 2): each one's family (assortment.py)
    names: Names | None = None

    @property
    def n_users(self) -> int:
        return self.users.n

    @property
    def n_products(self) -> int:
        return int(self.product_category.size)

    @classmethod
    def build(cls, config: ModelConfig, cities: tuple[City, ...], with_names: bool = False) -> Catalog:
        rng = np.random.default_rng([config.seed, 0xCA7A])
        n_products = config.max_products
        products = Assortment.build(rng, n_products)
        popularity = products.popularity
        reviews = np.floor(popularity * n_products * 40 * rng.uniform(0.5, 1.5, n_products)).astype(np.int32)
        tags = rng.integers(0, 6, (n_products, 2)).astype(np.int8)
        adjective = rng.integers(0, len(ADJECTIVES), n_products).astype(np.int8)
        group = group_of(products.category, products.subcategory, products.tier)
        similar, family_head = similar_products(group, config.seed)
        carted = cart_weight(popularity, products.rating_tenths, products.in_stock)
        return cls(
            config=config, cities=cities,
            users=Users(config, cities),
            product_category=products.category, product_price_cents=products.price_cents,
            # Variants of one item share its brand.
            product_brand=products.brand[family_head], product_noun=products.subcategory, product_adjective=adjective,
            product_rating_tenths=products.rating_tenths, product_review_count=reviews,
            product_in_stock=products.in_stock, product_tags=tags, product_popularity=popularity,
            product_tier=products.tier,
            browse=GroupSampler(group, popularity, N_GROUPS), carts=GroupSampler(group, carted, N_GROUPS),
            subcategory_order=products.subcategory_order, similar=similar,
            names=build_names(config.seed, config.countries) if with_names else None,
        )

    # ---- rendering helpers shared by the users stream and the encoder ----

    def user_id(self, user: int) -> str:
        return f"u{user:08d}"

    def product_id(self, product: int) -> str:
        return f"p{product:07d}"

    @cached_property
    def order_value_cents(self) -> np.ndarray:
        """Expected value of an order per segment: items per order (the funnel's) x mean quantity x the mean
        price of carted products at the segment's price tiers (intent.py's tier shares)."""
        from .intent import USER_TIER_SHARES  # intent imports this module

        funnel = calibration(self.config.funnel)
        weight = cart_weight(self.product_popularity, self.product_rating_tenths, self.product_in_stock)
        price = np.array([(weight * self.product_price_cents)[self.product_tier == t].sum()
                          / max(weight[self.product_tier == t].sum(), 1e-12) for t in range(len(TIERS))])
        tiers = np.array([USER_TIER_SHARES[s] for s in SEGMENTS])
        return np.asarray(funnel.items_per_order * MEAN_CART_QUANTITY * (tiers @ price))

    def user_facts(self, user: np.ndarray, as_of: int | date | datetime) -> dict[str, np.ndarray]:
        """The catalog's activity figures of users as of a time, vectorised, from the same per-user functions
        that drive the events (visit rate x time active x the segment's orders per session, each worth about
        the segment's order value).

        `last_active_ms` is -1 for users who have not registered by then.
        """
        t = as_of_ms(as_of)
        users = self.users
        user = np.asarray(user, dtype=np.int64)
        registered, churn = users.registered_ms(user), users.churn_ms(user)
        rate = users.sessions_per_day(user)
        segment = users.segment(user)
        end = np.minimum(t, churn)
        days_active = np.maximum(end - registered, 0) / MS_PER_DAY
        orders_per_session = calibration(self.config.funnel).orders_per_session[segment]
        word = hash_positions(derive_key(self.config.seed, 0xFAC7), user.astype(np.uint64))
        orders = _poisson(rate * days_active * orders_per_session, unit(word, 0))
        spend_factor = 0.6 + 0.8 * unit(word, 1)
        spent = np.rint(orders * self.order_value_cents[segment] * spend_factor)
        spent = np.where(orders > 0, np.maximum(spent, orders * 100), 0)
        gap_days = -np.log(unit(word, 2) + 1e-7) / np.maximum(rate, 1e-9)
        last = np.maximum(end - (gap_days * MS_PER_DAY).astype(np.int64), registered)
        last = np.where(registered <= t, last, -1)
        return {"registered_ms": registered, "churn_ms": churn, "last_active_ms": last,
                "order_count": orders.astype(np.int64), "total_spent_cents": spent.astype(np.int64),
                "segment": segment, "sessions_per_day": rate}

    def user_record(self, user: int, as_of: int | date | datetime, truth: bool = False) -> dict[str, object]:
        """One user as the users stream serves it (the original's fields, same names), as of `as_of` (the
        stream's start: epoch ms, a date or a datetime). With `truth`, the model's labels under "truth"."""
        assert self.names is not None, "build the catalog with_names=True to render users"
        ids = np.array([user], dtype=np.int64)
        age, gender_index, profile_index = (int(x[0]) for x in self.users.demographics(ids))
        gender = GENDERS[gender_index]
        city = self.cities[int(self.users.city(ids)[0])]
        first, last, email = self._name_and_email(user, gender, city.country_code)
        profile = DEVICE_PROFILES[profile_index]
        prefs, count = self.users.preferences(ids)
        facts = {name: value[0] for name, value in self.user_facts(ids, as_of).items()}
        last_active = int(facts["last_active_ms"])
        record: dict[str, object] = {
            "user_id": self.user_id(user),
            "email": email,
            "first_name": first,
            "last_name": last,
            "age": age,
            "gender": gender,
            "location": f"{city.name}, {city.country_name}",
            "country": city.country_code,
            "city": city.name,
            "user_segment": SEGMENTS[int(facts["segment"])],
            "registration_date": iso_ms(int(facts["registered_ms"]))[:10],
            "last_active": iso_ms(last_active)[:10] if last_active >= 0 else None,
            "total_spent": int(facts["total_spent_cents"]) / 100,
            "order_count": int(facts["order_count"]),
            "preferences": [CATEGORIES[int(c)] for c in prefs[0, : int(count[0])]],
            "device_type": profile[0],
            "browser": profile[1],
        }
        if truth:
            churn = int(facts["churn_ms"])
            klass = int(self.users.klass(ids)[0])
            record["truth"] = {
                "segment": SEGMENTS[int(facts["segment"])],
                "activity_tier": int(CLASS_TIER[klass]),
                "sessions_per_day": round(float(facts["sessions_per_day"]), 4),
                "registration_time": iso_ms(int(facts["registered_ms"])),
                "churn_time": iso_ms(churn) if churn <= CHURN_HORIZON_MS else None,
            }
        return record

    @cached_property
    def _name_key(self) -> np.uint64:
        return derive_key(self.config.seed, 0xE3A1)

    def _name_and_email(self, user: int, gender: str, country: str) -> tuple[str, str, str]:
        """(first name, last name, email) from the country's pools, by a hash of the user."""
        assert self.names is not None
        pools = self.names.people[country]
        words = hash_positions(self._name_key, np.array([user, user + USER_ID_CAPACITY], dtype=np.uint64))
        names_word, email_word = (int(w) for w in words)  # one hash of two positions: names, email
        male = gender == "male" or (gender == "non-binary" and _lane(names_word, 2) < 0.5)
        firsts, lasts, firsts_ascii, lasts_ascii = pools.pools(male)
        i, j = int(_lane(names_word, 0) * len(firsts)), int(_lane(names_word, 1) * len(lasts))
        email = email_address(firsts_ascii[i], lasts_ascii[j], email_number(user, self.config.seed),
                              _lane(email_word, 0), _lane(email_word, 1), country)
        return firsts[i], lasts[j], email

    def product_record(self, product: int) -> dict[str, object]:
        """One product with its name and brand (needs names)."""
        assert self.names is not None, "build the catalog with_names=True to render products"
        category = int(self.product_category[product])
        brand = self.names.brands[int(self.product_brand[product])]
        # A series from a hash of the id: names stay distinct without a product array of their own.
        word = int(hash_positions(derive_key(self.config.seed, 0x9A3E), np.array([product], dtype=np.uint64))[0])
        adjective = ADJECTIVES[int(self.product_adjective[product])]
        noun = PRODUCT_NOUNS[category][int(self.product_noun[product])]
        return {
            "product_id": self.product_id(product),
            "name": f"{brand} {series_name(CATEGORIES[category], word)} {adjective} {noun}",
            "category": CATEGORIES[category],
            "subcategory": noun.lower(),
            "price": int(self.product_price_cents[product]) / 100,
            "price_tier": TIERS[int(self.product_tier[product])],
            "brand": brand,
            "rating": int(self.product_rating_tenths[product]) / 10,
            "review_count": int(self.product_review_count[product]),
            "in_stock": bool(self.product_in_stock[product]),
            "tags": sorted({PRODUCT_TAGS[category][int(t)] for t in self.product_tags[product]}),
            "popularity": float(self.product_popularity[product]),
        }


def _lane(word: int, lane: int) -> float:
    """`rng.unit` of one Python int: uniform in [0, 1) from 21 bits of the word."""
    return ((word >> (21 * lane)) & 0x1FFFFF) / (1 << 21)


def build_names(seed: int, countries: tuple[str, ...]) -> Names:
    """The pools, filled once (people's from Faker, for the store's countries only); everything else indexes
    into them."""
    return Names(person_names(countries), brand_names(seed, BRANDS_PER_CATEGORY))


def _poisson(lam: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Poisson(lam) by inversion of one uniform per value; the normal approximation above lam = 40."""
    lam = np.asarray(lam, dtype=np.float64)
    small = np.minimum(lam, 40.0)
    k = np.zeros(lam.shape, dtype=np.int64)
    p = np.exp(-small)
    cdf = p.copy()
    for i in range(1, 120):
        more = u > cdf
        if not more.any():
            break
        k += more
        p = p * small / i
        cdf = cdf + p
    z = np.sqrt(2.0) * _erfinv(2 * u - 1)
    normal = np.maximum(np.rint(lam + np.sqrt(lam) * z), 0).astype(np.int64)
    return np.where(lam > 40.0, normal, k)


def _erfinv(x: np.ndarray) -> np.ndarray:
    """Winitzki's approximation of the inverse error function (about 2e-3 relative): enough for counts."""
    x = np.clip(x, -1 + 1e-12, 1 - 1e-12)
    a = 0.147
    ln = np.log(1 - x * x)
    first = 2 / (np.pi * a) + ln / 2
    return np.asarray(np.sign(x) * np.sqrt(np.sqrt(first * first - ln / a) - first))
