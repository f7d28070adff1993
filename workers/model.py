"""The behavioural contract of the original README, as data, and the settings that define a stream.

Everything a generated stream depends on is in `ModelConfig`: two processes (or two Spark executors)
holding equal configs produce byte-identical events for the same positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

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
# Unit price range in dollars per category, in CATEGORIES order.
CATEGORY_PRICES: Final[tuple[tuple[int, int], ...]] = (
    (50, 2000), (10, 200), (20, 500), (15, 100), (30, 300), (10, 50), (15, 80), (50, 800), (5, 50), (10, 150),
)
# Share of the catalog's products in each category (a store carries more clothes than cars parts).
CATEGORY_WEIGHTS: Final[tuple[float, ...]] = (0.14, 0.18, 0.12, 0.09, 0.08, 0.12, 0.07, 0.05, 0.09, 0.06)

# (device_type, browser, device_info, share). A user has one profile; a session mostly uses it.
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

# Sessions: a session ends after each event with probability 1/MEAN_SESSION_EVENTS, and never has more than
# MAX_SESSION_EVENTS events (see behaviour.py for why that bound exists).
MEAN_SESSION_EVENTS: Final[int] = 8
MAX_SESSION_EVENTS: Final[int] = 32
# Visitors on the site at once, at most. The stream interleaves this many sessions (fewer for small catalogs).
MAX_CONCURRENT_SESSIONS: Final[int] = 16384
# Share of product choices made within the user's preferred categories.
PREFERENCE_SHARE: Final[float] = 0.7
# Share of sessions on the user's own device profile.
OWN_DEVICE_SHARE: Final[float] = 0.85
# Zipf exponent of product popularity.
POPULARITY_EXPONENT: Final[float] = 1.1


@dataclass(frozen=True)
class ModelConfig:
    """What defines the simulated site. Equal configs give byte-identical streams."""

    seed: int = 7
    max_users: int = 100_000
    max_products: int = 50_000
    # Number of real cities (largest first, geonames) users live in.
    city_count: int = 2000

    def __post_init__(self) -> None:
        if not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be in 0..2**63-1, got {self.seed}")
        if not 1 <= self.max_users <= 10_000_000:
            raise ValueError(f"max_users must be in 1..10000000, got {self.max_users}")
        if not 10 <= self.max_products <= 10_000_000:
            raise ValueError(f"max_products must be in 10..10000000, got {self.max_products}")

    @property
    def lanes(self) -> int:
        """Concurrent sessions in a stream: each lane owns a disjoint set of users (see behaviour.py)."""
        return max(1, min(MAX_CONCURRENT_SESSIONS, self.max_users // 4))
