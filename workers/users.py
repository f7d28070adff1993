"""The store's users as pure functions of (seed, user id): no per-user table, so 10 million users cost nothing.

Every attribute of user `u` comes from a keyed hash of `u` (SplitMix64, `rng.py`), vectorised over
arrays of ids, so a worker, the users stream and the realism report compute the same user without
sharing memory. A table of 10M users would take ~350 MB per process; these functions take none.

Classes: segment x activity tier
--------------------------------
Ids come in blocks of BLOCK = 4000. Within a block, a keyed rotation of the 4000 slots assigns each
(segment, tier) class exactly its share of slots (segment 40/35/20/5 %, tiers 45/30/15/8/2 %), so shares
are exact in every block while `id % 4000` predicts nothing. Sampling a user of class c uniformly is then
O(1): a random block, a random slot of c, and the inverse rotation.

Lifecycle
---------
Users register at a constant rate in id order from REGISTRATION_START_MS on: `max_users` of them by
REGISTRATION_END_MS, and more after it at the same rate (ids past `max_users`), so the store keeps a steady
population however far its event time runs (a live site delivering far faster than the store's own activity
runs years ahead within hours), until USER_ID_CAPACITY ids have registered. A user's lifetime is
exponential, capped at LIFETIME_CAP_MEANS mean lifetimes (so the users alive at a time are among the last
few years' registrations, which keeps a session's user draw cheap), with a constant hazard that depends on
the class: a segment base plus a share per session that ends without a purchase (the "experience": rarely
converting, often visiting users leave sooner). Since a user's lifetime must be a pure function of the id,
the hazard uses the class's expected number of unconverted sessions, not the ones a particular stream
happens to draw. A user is active in [registered, churned).

Who and where
-------------
A user's country is drawn by the store's online shoppers per country (markets.py), then a city of that
country by population; the device profile by the country's device mix; the age from online shoppers' age
bands (uniform within a band, so no age stands out).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import cached_property
from itertools import permutations

import numpy as np

from .funnel import calibration
from .markets import SHOPPERS_MILLIONS, profile_shares
from .model import (
    BASE_CHURN_PER_DAY,
    CATEGORIES,
    CHURN_PER_UNCONVERTED_SESSION,
    DEVICE_PROFILES,
    MS_PER_DAY,
    REGISTRATION_END_MS,
    REGISTRATION_START_MS,
    SEGMENT_ACTIVITY,
    SEGMENT_WEIGHTS,
    TIER_SESSIONS_PER_DAY,
    TIER_SHARES,
    ModelConfig,
)
from .places import City
from .rng import UNIT_BITS, derive_key, hash_positions, unit, unit_bits
from .shares import UnitSearch

BLOCK = 4000
# Ids are "u" and 8 digits (encode.py), so at most 10**8 users ever register (a 100,000-user store takes
# four thousand years to reach it; a 10,000,000-user one, about forty).
USER_ID_CAPACITY = 10**8
LIFETIME_CAP_MEANS = 4.0
N_TIERS = len(TIER_SHARES)
N_CLASSES = len(SEGMENT_WEIGHTS) * N_TIERS
GENDERS: tuple[str, ...] = ("female", "male", "non-binary")
# Online shoppers' ages: (first age, last age, share), approximate shares of e-commerce users by age band.
AGE_BANDS: tuple[tuple[int, int, float], ...] = (
    (18, 24, 0.14), (25, 34, 0.26), (35, 44, 0.22), (45, 54, 0.17), (55, 64, 0.13), (65, 80, 0.08),
)
AGE_CDF = np.cumsum([share for _lo, _hi, share in AGE_BANDS])
AGE_FIRST = np.array([lo for lo, _hi, _s in AGE_BANDS])
AGE_SPAN = np.array([hi - lo + 1 for lo, hi, _s in AGE_BANDS])
# Every ordered choice of 4 distinct categories: a user's preferences are the first 1-4 of one of them.
PREFERENCE_PERMUTATIONS = np.array(list(permutations(range(len(CATEGORIES)), 4)), dtype=np.int8)


def _class_slots() -> np.ndarray:
    """Slots per class (segment-major, then tier) in a block of BLOCK ids: exact shares, summing to BLOCK."""
    slots = np.array([round(BLOCK * s * t) for s in SEGMENT_WEIGHTS for t in TIER_SHARES], dtype=np.int64)
    assert slots.sum() == BLOCK, slots
    return slots


CLASS_SLOTS = _class_slots()
CLASS_FIRST_SLOT = np.concatenate([[0], np.cumsum(CLASS_SLOTS)[:-1]]).astype(np.int64)
CLASS_OF_SLOT = np.repeat(np.arange(N_CLASSES, dtype=np.int8), CLASS_SLOTS)
CLASS_SEGMENT = (np.arange(N_CLASSES) // N_TIERS).astype(np.int8)
CLASS_TIER = (np.arange(N_CLASSES) % N_TIERS).astype(np.int8)
# Sessions per day of an active user of each class.
CLASS_SESSIONS_PER_DAY = np.array(
    [TIER_SESSIONS_PER_DAY[t] * SEGMENT_ACTIVITY[s] for s in range(len(SEGMENT_WEIGHTS)) for t in range(N_TIERS)]
)


def _mod(x: np.ndarray, m: int | np.uint64) -> np.ndarray:
    """`x % m` (numpy's sign rules) through a floor division: numpy divides by a scalar with libdivide, but
    its remainder by one is ~3x slower."""
    return np.asarray(x - (x // m) * m)


def _u(word: np.ndarray, lane: int) -> np.ndarray:
    """Uniform in (0, 1): never 0, so logarithms stay finite."""
    return unit(word, lane) + 0.5 / (1 << 21)


class Users:
    """Vectorised per-user functions of one store (`ModelConfig`). Ids are int64 arrays."""

    def __init__(self, config: ModelConfig, cities: tuple[City, ...]) -> None:
        self.config = config
        self.n = config.max_users  # users registered by REGISTRATION_END_MS
        self.blocks = USER_ID_CAPACITY // BLOCK
        self.cities = cities
        seed = config.seed
        self._k_rotate, self._k_life, self._k_phase, self._k_demo, self._k_prefs, self._k_place = (
            derive_key(seed, 0x05E5, purpose) for purpose in range(6)
        )
        self.countries = tuple(dict.fromkeys(c.country_code for c in cities))
        self.city_country = np.array([self.countries.index(c.country_code) for c in cities], dtype=np.int64)
        shoppers = np.array([SHOPPERS_MILLIONS[code] for code in self.countries], dtype=np.float64)
        self._country_cdf = np.cumsum(shoppers) / shoppers.sum()
        self._country_cities, self._city_cdf = _grouped_cdf(
            self.city_country, np.array([c.population for c in cities], dtype=np.float64))
        self._country_search, self._city_search = UnitSearch(self._country_cdf), UnitSearch(self._city_cdf)
        self._profile_cdf = np.cumsum([profile_shares(code) for code in self.countries], axis=1)
        self.span_ms = REGISTRATION_END_MS - REGISTRATION_START_MS
        # Each block's slot rotation, looked up rather than hashed per draw (2,500 blocks for 10M users).
        blocks = np.arange(self.blocks + 1, dtype=np.uint64)
        self._rotations = (hash_positions(self._k_rotate, blocks) % np.uint64(BLOCK)).astype(np.int64)

    # ---- the hazard needs the funnel's conversion (behaviour.py), computed once ----

    @cached_property
    def class_hazard_per_day(self) -> np.ndarray:
        unconverted = calibration(self.config.funnel).unconverted_share
        base = np.array(BASE_CHURN_PER_DAY)[CLASS_SEGMENT]
        return np.asarray(base + CHURN_PER_UNCONVERTED_SESSION * CLASS_SESSIONS_PER_DAY * unconverted[CLASS_SEGMENT])

    # ---- classes ----

    def _rotation(self, block: np.ndarray) -> np.ndarray:
        return np.asarray(self._rotations[np.minimum(block, self.blocks)])

    def klass(self, user: np.ndarray) -> np.ndarray:
        user = np.asarray(user, dtype=np.int64)
        slot = _mod(_mod(user, BLOCK) + self._rotation(user // BLOCK), BLOCK)
        return np.asarray(CLASS_OF_SLOT[slot])

    def segment(self, user: np.ndarray) -> np.ndarray:
        return np.asarray(CLASS_SEGMENT[self.klass(user)])

    def user_of(self, block: np.ndarray, klass: np.ndarray, u_slot: np.ndarray) -> np.ndarray:
        """The user in `block` at a uniformly drawn slot of class `klass` (may be >= n in the last block)."""
        slot = CLASS_FIRST_SLOT[klass] + (u_slot * CLASS_SLOTS[klass]).astype(np.int64)
        return np.asarray(block * BLOCK + _mod(slot - self._rotation(block), BLOCK))

    def life_word(self, user: np.ndarray) -> np.ndarray:
        """The hash behind a user's lifetime (bits 0-20) and phase (bits 62-63)."""
        return hash_positions(self._k_life, np.asarray(user, dtype=np.int64).astype(np.uint64))

    def phase(self, user: np.ndarray) -> np.ndarray:
        """Which half-hour of every two hours the user's sessions start in (0-3): see behaviour.py."""
        return self.phase_of(self.life_word(user))

    @staticmethod
    def phase_of(life_word: np.ndarray) -> np.ndarray:
        return (life_word >> np.uint64(62)).astype(np.int64)

    @cached_property
    def class_max_lifetime_ms(self) -> np.ndarray:
        return np.asarray(LIFETIME_CAP_MEANS / self.class_hazard_per_day * MS_PER_DAY).astype(np.int64)

    def lifetime_ms(self, life_word: np.ndarray, klass: np.ndarray) -> np.ndarray:
        days = -np.log(_u(life_word, 0)) / self.class_hazard_per_day[klass]
        return np.asarray(np.minimum((days * MS_PER_DAY).astype(np.int64), self.class_max_lifetime_ms[klass]))

    def sessions_per_day(self, user: np.ndarray) -> np.ndarray:
        return np.asarray(CLASS_SESSIONS_PER_DAY[self.klass(user)])

    # ---- lifecycle ----

    def registered_ms(self, user: np.ndarray) -> np.ndarray:
        user = np.asarray(user, dtype=np.int64)
        # In two parts: user * span_ms overflows int64 past ~73 million ids.
        whole = user // self.n
        part = user - whole * self.n
        return np.asarray(REGISTRATION_START_MS + whole * self.span_ms + (part * self.span_ms) // self.n)

    def registered_by(self, time_ms: int) -> int:
        """How many users (ids 0 .. k-1) have registered at or before time_ms."""
        if time_ms < REGISTRATION_START_MS:
            return 0
        return int(min(USER_ID_CAPACITY, ((time_ms - REGISTRATION_START_MS) * self.n) // self.span_ms + 1))

    @property
    def ids_exhausted_ms(self) -> int:
        """When the last of USER_ID_CAPACITY ids registers: the store's activity is defined up to then."""
        return int(self.registered_ms(np.array([USER_ID_CAPACITY]))[0])

    def oldest_block(self, time_ms: int) -> np.ndarray:
        """Per class, the first block that can hold a user of the class active at `time_ms` (older ones have
        all reached their capped lifetime)."""
        return np.array([self.registered_by(time_ms - int(cap)) // BLOCK for cap in self.class_max_lifetime_ms])

    def churn_ms(self, user: np.ndarray) -> np.ndarray:
        """When the user stops coming back: registration + an exponential lifetime of the class's hazard."""
        user = np.asarray(user, dtype=np.int64)
        return np.asarray(self.registered_ms(user) + self.lifetime_ms(self.life_word(user), self.klass(user)))

    def alive(self, user: np.ndarray, time_ms: np.ndarray) -> np.ndarray:
        user = np.asarray(user, dtype=np.int64)
        inside = user < USER_ID_CAPACITY
        safe = np.where(inside, user, 0)
        return inside & (self.registered_ms(safe) <= time_ms) & (time_ms < self.churn_ms(safe))

    def class_alive(self, time_ms: np.ndarray) -> np.ndarray:
        """Expected active users of each class at each time (shape (len(times), N_CLASSES)), in closed form.

        Registration at rate rho_c per ms from R0 on and survival exp(-h_c a) up to the cap A_c give
        n_c(t) = rho_c / h_c (1 - exp(-h_c min(t - R0, A_c))) for t > R0.
        """
        t = np.asarray(time_ms, dtype=np.float64)[:, None]
        h = self.class_hazard_per_day[None, :] / MS_PER_DAY
        rho = (self.n * CLASS_SLOTS / BLOCK / self.span_ms)[None, :]
        cap = self.class_max_lifetime_ms[None, :].astype(np.float64)
        age = np.minimum(np.maximum(t - float(REGISTRATION_START_MS), 0.0), cap)
        return np.asarray(rho / h * (1.0 - np.exp(-h * age)))

    # ---- demographics and preferences ----

    def demographics(self, user: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(age int16, gender int8, device profile int8)."""
        word = hash_positions(self._k_demo, np.asarray(user, dtype=np.uint64))
        u1, u2, u3 = _u(word, 0), _u(word, 1), _u(word, 2)
        band = np.minimum(np.searchsorted(AGE_CDF, u1 * AGE_CDF[-1], side="right"), len(AGE_BANDS) - 1)
        age = (AGE_FIRST[band] + np.minimum(u2 * AGE_SPAN[band], AGE_SPAN[band] - 1)).astype(np.int16)
        gender_u = (word >> np.uint64(63)).astype(np.float64) * 0.5 + u3 * 0.5  # a fourth draw from the spare bit
        gender = ((gender_u >= 0.49).astype(np.int8) + (gender_u >= 0.98)).astype(np.int8)
        return age, gender, self._profile_of(self.country(user), u3)

    def profile(self, user: np.ndarray) -> np.ndarray:
        """The user's own device profile (as `demographics` gives it, without the age and gender)."""
        word = hash_positions(self._k_demo, np.asarray(user, dtype=np.uint64))
        return self._profile_of(self.country(user), _u(word, 2))

    def _profile_of(self, country: np.ndarray, u: np.ndarray) -> np.ndarray:
        """A profile drawn from each country's mix: one row of the cdf table per user."""
        rows = self._profile_cdf[country]
        index = (rows <= (u * rows[:, -1])[:, None]).sum(axis=1)
        return np.asarray(np.minimum(index, len(DEVICE_PROFILES) - 1), dtype=np.int8)

    def country(self, user: np.ndarray) -> np.ndarray:
        """Index into `countries`, drawn by online shoppers per country."""
        return self._country_of(hash_positions(self._k_place, np.asarray(user, dtype=np.uint64)))

    def _country_of(self, place_word: np.ndarray) -> np.ndarray:
        index = self._country_search(unit_bits(place_word, 0))  # searchsorted(_country_cdf, unit(word, 0))
        return np.asarray(np.minimum(index, len(self.countries) - 1), dtype=np.int64)

    def city(self, user: np.ndarray) -> np.ndarray:
        """Index into the cities: one of the user's country's, by population."""
        word = hash_positions(self._k_place, np.asarray(user, dtype=np.uint64))
        # The per-country cdfs sit end to end, country k's in (k, k + 1]: one search (of country + unit(word, 1))
        # finds the city.
        slot = self._city_search((self._country_of(word) << UNIT_BITS) | unit_bits(word, 1))
        return np.asarray(self._country_cities[slot]).astype(np.int32)

    def preferences(self, user: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(categories int8 (n, 4), count int8 1..4): the user prefers the first `count` categories."""
        word = hash_positions(self._k_prefs, np.asarray(user, dtype=np.uint64))
        perm = _mod(word, np.uint64(len(PREFERENCE_PERMUTATIONS))).astype(np.int64)
        count = (1 + ((word >> np.uint64(60)) & np.uint64(3))).astype(np.int8)
        return PREFERENCE_PERMUTATIONS[perm], count


def _grouped_cdf(group: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(items sorted by group, each group's cdf of weight shifted up by the group's index, ending at exactly
    group + 1): searching group + u (u in [0, 1)) in the cdf draws an item of that group by weight."""
    order = np.argsort(group, kind="stable")
    sorted_group, sorted_weight = group[order], weight[order]
    totals = np.bincount(sorted_group, weights=sorted_weight)
    before = np.cumsum(sorted_weight) - sorted_weight  # weight of the items ahead of each one
    running = np.cumsum(sorted_weight) - before[np.searchsorted(sorted_group, sorted_group, side="left")]
    cdf = sorted_group + running / totals[sorted_group]
    last = np.r_[sorted_group[1:] != sorted_group[:-1], True]
    cdf[last] = sorted_group[last] + 1.0
    return order, cdf


def as_of_ms(as_of: int | date | datetime) -> int:
    """A reference time as epoch milliseconds (a date means its midnight UTC)."""
    if isinstance(as_of, datetime):
        moment = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    if isinstance(as_of, date):
        return int(datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC).timestamp() * 1000)
    return int(as_of)


def iso_ms(time_ms: int) -> str:
    return datetime.fromtimestamp(time_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
