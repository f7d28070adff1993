"""Brand names and product series designations: plausible, varied and built from the seed alone.

Brands are invented words ("Velora"), invented words with a word of their category ("Lumix Audio") or
pairs of plain words ("North & Pine"); a product's series is a model code where shoppers expect one
(electronics, sports gear, toys, car parts: "X7", "S-240") and a name elsewhere ("Aspen", "Harbor II").
"""

from __future__ import annotations

import numpy as np

from .model import CATEGORIES

SYLLABLE_STARTS: tuple[str, ...] = (
    "Vel", "Nor", "Ari", "Lum", "Kai", "Sol", "Bel", "Cor", "Dun", "Ev", "Fen", "Gal", "Hal", "Iv", "Jun", "Kor",
    "Lin", "Mar", "Nov", "Orl", "Pax", "Quin", "Rav", "Sil", "Tor", "Ul", "Ver", "Wil", "Xan", "Zen", "Alt", "Bri",
    "Cal", "Dor", "Elm", "Fal", "Gre", "Hol", "Kin", "Mon", "Ner", "Oph", "Pel", "Ros", "Sav", "Tal", "Vin", "Yar",
)
SYLLABLE_ENDS: tuple[str, ...] = (
    "a", "ex", "io", "ora", "on", "ix", "ia", "en", "ar", "is", "o", "um", "era", "ly", "ent", "ova", "ane", "ero",
    "ito", "ana", "ique", "oza", "us", "elle",
)
PLAIN_WORDS: tuple[str, ...] = (
    "North", "Pine", "Harbor", "Oak", "River", "Summit", "Maple", "Stone", "Cedar", "Willow", "Copper", "Atlas",
    "Ember", "Meadow", "Fox", "Juniper", "Anchor", "Birch", "Lark", "Hollow", "Ridge", "Bay", "Moss", "Arrow",
)
# Words a brand of each category (CATEGORIES order) may carry after its name.
CATEGORY_BRAND_WORDS: tuple[tuple[str, ...], ...] = (
    ("Audio", "Tech", "Digital", "Electronics", "Systems", "Labs"),
    ("Apparel", "Wear", "& Co", "Studio", "Denim", "Collective"),
    ("Home", "Living", "Interiors", "Kitchen", "Design", "House"),
    ("Beauty", "Botanics", "Skin", "Cosmetics", "Naturals", "Lab"),
    ("Sports", "Outdoor", "Athletics", "Gear", "Active", "Performance"),
    ("Press", "Books", "Publishing", "House", "Editions", "Media"),
    ("Toys", "Kids", "Play", "Games", "Toyworks", "Workshop"),
    ("Auto", "Motors", "Parts", "Garage", "Tools", "Automotive"),
    ("Foods", "Farms", "Pantry", "Kitchen", "Provisions", "Harvest"),
    ("Health", "Wellness", "Vitamins", "Care", "Nutrition", "Pharma"),
)
# Categories whose products carry model codes rather than series names.
CODED_CATEGORIES: frozenset[str] = frozenset({"electronics", "sports", "toys", "automotive"})
CODE_LETTERS = "ABCDEFGHJKLMNPRSTUVXZ"
SERIES_NAMES: tuple[str, ...] = (
    "Aspen", "Harbor", "Coastline", "Everest", "Solstice", "Meridian", "Aurora", "Haven", "Canyon", "Sierra",
    "Tundra", "Breeze", "Horizon", "Legacy", "Voyage", "Bloom", "Origin", "Nova", "Zephyr", "Crest", "Lumen",
    "Terra", "Vista", "Echo", "Pulse", "Nomad", "Cascade", "Orchard", "Prairie", "Monsoon", "Sable", "Ivory",
    "Indigo", "Saffron", "Granite", "Velvet", "Alpine", "Riviera", "Atlas", "Juniper", "Marina", "Oasis",
    "Pinnacle", "Quartz", "Sequoia", "Tahoe", "Wren", "Yukon",
)
SERIES_GENERATIONS: tuple[str, ...] = ("", "", "", " II", " III", " Plus", " Lite", " Max")


def brand_names(seed: int, per_category: int) -> tuple[str, ...]:
    """`per_category` distinct brands per category, in CATEGORIES order, all distinct."""
    rng = np.random.default_rng([seed, 0xB4A2])
    brands: list[str] = []
    seen: set[str] = set()
    for category in range(len(CATEGORIES)):
        count = 0
        while count < per_category:
            name = _brand(rng, CATEGORY_BRAND_WORDS[category])
            if name not in seen:
                seen.add(name)
                brands.append(name)
                count += 1
    return tuple(brands)


def _brand(rng: np.random.Generator, category_words: tuple[str, ...]) -> str:
    invented = SYLLABLE_STARTS[rng.integers(len(SYLLABLE_STARTS))] + SYLLABLE_ENDS[rng.integers(len(SYLLABLE_ENDS))]
    kind = rng.random()
    if kind < 0.45:
        return invented
    if kind < 0.8:
        return f"{invented} {category_words[rng.integers(len(category_words))]}"
    first, second = rng.choice(len(PLAIN_WORDS), 2, replace=False)
    return f"{PLAIN_WORDS[first]} & {PLAIN_WORDS[second]}" if kind < 0.9 else \
        f"{PLAIN_WORDS[first]}{PLAIN_WORDS[second].lower()}"


def series_name(category: str, word: int) -> str:
    """A product's model code or series name, from a 64-bit hash word of its id."""
    if category in CODED_CATEGORIES:
        letter = CODE_LETTERS[word % len(CODE_LETTERS)]
        number = 1 + (word >> 8) % 990
        style = (word >> 20) % 3
        return f"{letter}{number}" if style == 0 else f"{letter}-{number * 10}" if style == 1 else \
            f"{letter}{CODE_LETTERS[(word >> 24) % len(CODE_LETTERS)]} {number % 20 + 1}"
    generation = SERIES_GENERATIONS[(word >> 8) % len(SERIES_GENERATIONS)]
    return SERIES_NAMES[word % len(SERIES_NAMES)] + generation
