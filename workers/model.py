"""The behavioural contract of the original README, as data, and the settings that define a stream.

Everything a generated stream depends on is in `ModelConfig`: two processes (or two Spark executors)
holding equal configs produce byte-identical events for the same positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from ..limits import DEFAULT_FUNNEL, DEFAULT_START_MS, FUNNELS

SEGMENTS: Final[tuple[str, ...]] = ("casual", "regular", "power", "premium")
SEGMENT_WEIGHTS: Final[tuple[float, ...]] = (0.40, 0.35, 0.20, 0.05)
# Lifetime spend (dollars) and order count per segment, inclusive ranges.
SEGMENT_SPEND: Final[tuple[tuple[int, int], ...]] = ((0, 500), (500, 2000), (2000, 10000), (10000, 50000))
SEGMENT_ORDERS: Final[tuple[tuple[int, int], ...]] = ((0, 10), (10, 50), (50, 200), (200, 1000))

INTERACTION_TYPES: Final[tuple[str, ...]] = ("view", "click", "add_to_cart", "purchase", "wishlist")
VIEW, CLICK, CART, PURCHASE, WISHLIST = range(5)
# Share of each interaction type (view, click, add_to_cart, purchase, wishlist) per segment.
SEGMENT_MIX: Final[np.ndarray] = np.array(
    [
        [0.60, 0.25, 0.08, 0.02, 0.05],
        [0.50, 0.20, 0.15, 0.08, 0.07],
        [0.40, 0.15, 0.20, 0.15, 0.10],
        [0.35, 0.10, 0.25, 0.20, 0.10],
    ]
)

CATEGORIES: Final[tuple[str, ...]] = (
    "electronics", "clothing", "home", "beauty", "sports", "books", "toys", "automotive", "grocery", "health",
)
# Each category's subcategories (the nouns of its product names, catalog.py).
SUBCATEGORIES_PER_CATEGORY: Final[int] = 8
# Unit price range in dollars per category, in CATEGORIES order.
CATEGORY_PRICES: Final[tuple[tuple[int, int], ...]] = (
    (50, 2000), (10, 200), (20, 500), (15, 100), (30, 300), (10, 50), (15, 80), (50, 800), (5, 50), (10, 150),
)
# Share of the catalog's products in each category (a store carries more clothes than cars parts).
CATEGORY_WEIGHTS: Final[tuple[float, ...]] = (0.14, 0.18, 0.12, 0.09, 0.08, 0.12, 0.07, 0.05, 0.09, 0.06)

# (device_type, browser, os, share): `os` is the device model and operating system, and the share is
# worldwide (markets.py reweights it per country). A user has one profile; a session mostly uses it.
DEVICE_PROFILES: Final[tuple[tuple[str, str, str, float], ...]] = (
    ("mobile", "Safari", "iPhone; iOS 18", 0.22),
    ("mobile", "Chrome", "Android 15; Pixel 9", 0.10),
    ("mobile", "Chrome", "Android 14; Galaxy S24", 0.14),
    ("mobile", "Samsung Internet", "Android 14; Galaxy A55", 0.05),
    ("mobile", "Firefox", "Android 13; Moto G", 0.02),
    ("desktop", "Chrome", "Windows 11", 0.17),
    ("desktop", "Edge", "Windows 11", 0.06),
    ("desktop", "Firefox", "Windows 10", 0.03),
    ("desktop", "Safari", "macOS 15", 0.07),
    ("desktop", "Chrome", "macOS 15", 0.04),
    ("desktop", "Chrome", "Linux x86_64", 0.01),
    ("tablet", "Safari", "iPad; iPadOS 18", 0.06),
    ("tablet", "Chrome", "Android 14; Galaxy Tab S9", 0.03),
)


def device_info(device_type: str, browser: str) -> str:
    """The `device_info` field of a session: "<device_type> - <browser>", e.g. "mobile - Chrome"."""
    return f"{device_type} - {browser}"


# (referrer URL or None for direct traffic, share of sessions).
REFERRERS: Final[tuple[tuple[str | None, float], ...]] = (
    (None, 0.30),
    ("https://www.google.com/", 0.34),
    ("https://www.bing.com/", 0.04),
    ("https://www.facebook.com/", 0.08),
    ("https://www.instagram.com/", 0.07),
    ("https://www.tiktok.com/", 0.04),
    ("https://www.youtube.com/", 0.03),
    ("https://mail.google.com/", 0.06),
    ("https://www.reddit.com/", 0.02),
    ("https://duckduckgo.com/", 0.02),
)

# Sessions end by the funnel's exit chances (funnel.py), at the 60-minute cut, or at MAX_SESSION_EVENTS.
MAX_SESSION_EVENTS: Final[int] = 40
# Share of product choices made within the user's preferred categories.
PREFERENCE_SHARE: Final[float] = 0.7
# Share of sessions on the user's own device profile.
OWN_DEVICE_SHARE: Final[float] = 0.85
# Zipf exponent of product popularity.
POPULARITY_EXPONENT: Final[float] = 1.2

# ---- the funnel (funnel.py) ----
# "mix": each segment's interaction mix is SEGMENT_MIX (far more purchase-heavy than a real shop);
# "retail": calibrated to a public e-commerce log (RetailRocket: 2.76M events, 96.7 % views, 2.5 %
# add-to-carts, 0.8 % transactions; its log has no clicks or wishlists).
RETAIL_MIX: Final[tuple[float, ...]] = (0.967, 0.0, 0.025, 0.008, 0.0)
# Chance that a session ends right after an event, by the event's type (view, click, add_to_cart,
# purchase = the last item of an order, wishlist), and after its first event whatever it was (a bounce).
EXIT_AFTER: Final[dict[str, tuple[float, ...]]] = {
    "mix": (0.11, 0.10, 0.05, 0.70, 0.10),
    "retail": (0.25, 0.25, 0.12, 0.90, 0.25),
}
BOUNCE: Final[dict[str, float]] = {"mix": 0.20, "retail": 0.22}
# A checkout straight after an add_to_cart is this much less likely than after browsing on: shoppers
# fill a cart, then pay (orders of several items). Per funnel.
CHECKOUT_AFTER_CART: Final[dict[str, float]] = {"mix": 0.35, "retail": 0.25}
# P(add_to_cart) of the product in focus is a base chance (calibrated) x these factors, each about 1 on
# average: the time on the product's page (0.35 + 1.3 u, u its quantile: long looks convert ~3x more
# than short ones), the device, where the visit came from.
DWELL_CONVERSION: Final[tuple[float, float]] = (0.35, 1.3)
DEVICE_CONVERSION: Final[dict[str, float]] = {"desktop": 1.25, "tablet": 1.05, "mobile": 0.85}
# Per referrer kind: direct visits and e-mail convert best, social media worst.
REFERRER_CONVERSION: Final[dict[str | None, float]] = {
    None: 1.15, "https://mail.google.com/": 1.45, "https://www.facebook.com/": 0.65,
    "https://www.instagram.com/": 0.6, "https://www.tiktok.com/": 0.5, "https://www.youtube.com/": 0.7,
    "https://www.reddit.com/": 0.8,
}  # search engines: 1.0
MAX_CART_CHANCE: Final[float] = 0.9
# With items in the cart, a shopper in buying mode carts the product in focus this much more readily.
# Per funnel: a real shop's rare carts still come several to an order.
CART_MOMENTUM: Final[dict[str, float]] = {"mix": 1.0, "retail": 8.0}

# ---- the store's clock ----
MS_PER_MINUTE: Final[int] = 60_000
MS_PER_HOUR: Final[int] = 3_600_000
MS_PER_DAY: Final[int] = 86_400_000
# DEFAULT_START_MS (clickstream/limits.py), the event time of a stream's first position unless told otherwise,
# is 2026-01-01T00:00:00Z, a Thursday.
# A session lasts at most an hour, its last page included; sessions of one user are >= 30 min apart.
MAX_SESSION_MS: Final[int] = 60 * MS_PER_MINUTE
SESSION_GAP_MS: Final[int] = 30 * MS_PER_MINUTE
# Seconds on a page: 5-300 s, 5 + 296 u^3 (median about 42 s). A view reports it as its `duration`.
PAGE_SECONDS: Final[tuple[int, int]] = (5, 300)
# Think time between leaving a page and the next event: log-normal, median and sigma, capped.
THINK_MEDIAN_S: Final[float] = 6.0
THINK_SIGMA: Final[float] = 1.2
THINK_MAX_S: Final[float] = 900.0
# Relative activity per hour of day, UTC (the store's local time): evening peak, night trough (~4x).
HOURLY_ACTIVITY: Final[tuple[float, ...]] = (
    0.55, 0.45, 0.38, 0.35, 0.35, 0.40, 0.52, 0.70, 0.88, 1.00, 1.05, 1.10,
    1.15, 1.10, 1.05, 1.05, 1.10, 1.20, 1.32, 1.42, 1.40, 1.22, 0.95, 0.72,
)
# Saturday and Sunday: busier overall, with a later, flatter morning.
WEEKEND_FACTOR: Final[float] = 1.25
WEEKEND_MORNING_SHIFT_H: Final[int] = 2

# ---- users: activity, lifecycle ----
# Activity tiers: share of users and sessions per day of an active user (heavy-tailed: the top 10 % of
# users make most of the events). Multiplied by the segment's factor (power and premium visit more).
TIER_SHARES: Final[tuple[float, ...]] = (0.45, 0.30, 0.15, 0.08, 0.02)
TIER_SESSIONS_PER_DAY: Final[tuple[float, ...]] = (0.02, 0.06, 0.2, 0.7, 2.0)
SEGMENT_ACTIVITY: Final[tuple[float, ...]] = (0.8, 1.0, 1.4, 1.8)
# Users register at a constant rate, in id order, from REGISTRATION_START_MS to REGISTRATION_END_MS:
# three years before the default start and one after, so a stream sees both old and new users.
REGISTRATION_START_MS: Final[int] = DEFAULT_START_MS - 3 * 365 * MS_PER_DAY
REGISTRATION_END_MS: Final[int] = DEFAULT_START_MS + 365 * MS_PER_DAY
# Churn: a constant hazard per day = base(segment) + CHURN_PER_UNCONVERTED_SESSION x the user's
# sessions per day x the share of that segment's sessions that end without a purchase.
BASE_CHURN_PER_DAY: Final[tuple[float, ...]] = (1 / 300, 1 / 500, 1 / 800, 1 / 1200)
CHURN_PER_UNCONVERTED_SESSION: Final[float] = 0.004
# `truth.churn_time` is null when a user's churn time is after this (beyond what any stream shows).
CHURN_HORIZON_MS: Final[int] = REGISTRATION_END_MS + 2 * 365 * MS_PER_DAY


@dataclass(frozen=True)
class ModelConfig:
    """What defines the simulated site. Equal configs give byte-identical streams."""

    seed: int = 7
    max_users: int = 100_000
    max_products: int = 50_000
    # Number of real cities (largest first, geonames) users live in, among the store's countries.
    city_count: int = 2000
    # Which calibration the sessions' funnel follows (FUNNELS).
    funnel: str = DEFAULT_FUNNEL
    # ISO codes of the countries the store sells in (STORE_COUNTRIES), sorted; empty: every market of
    # markets.SHOPPERS_MILLIONS.
    store_countries: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be in 0..2**63-1, got {self.seed}")
        if not 1 <= self.max_users <= 10_000_000:
            raise ValueError(f"max_users must be in 1..10000000, got {self.max_users}")
        if self.funnel not in FUNNELS:
            raise ValueError(f"funnel must be one of {', '.join(FUNNELS)}, got {self.funnel!r}")
        if not 10 <= self.max_products <= 10_000_000:
            raise ValueError(f"max_products must be in 10..10000000, got {self.max_products}")
        if self.store_countries:
            from .markets import check_store_countries  # markets.py imports this module's DEVICE_PROFILES

            try:
                check_store_countries(self.store_countries)
            except ValueError as exc:
                raise ValueError(f"store_countries must be {exc}") from None
            if list(self.store_countries) != sorted(set(self.store_countries)):
                raise ValueError(f"store_countries must be sorted and distinct, got {self.store_countries}")

    @property
    def countries(self) -> tuple[str, ...]:
        """The countries users live in, in markets.MARKETS order."""
        from .markets import MARKETS

        return tuple(c for c in MARKETS if not self.store_countries or c in self.store_countries)
