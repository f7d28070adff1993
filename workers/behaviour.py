"""Sessions and the funnel: who does what, in which order, at every position of a stream.

How positions map to sessions
-----------------------------
A stream interleaves `K = config.lanes` concurrent visitors ("lanes"), the way concurrent visitors
interleave on a real site. Position p of a shard's stream belongs to

    epoch = p // (K * L),  step j = (p % (K * L)) // K,  lane = p % K        (L = MAX_SESSION_EVENTS)

so consecutive positions visit every lane in turn, and each lane advances one step per K positions.
A lane is a run of back-to-back sessions: a new session starts at step j with probability 1/8 (and always
at j = 0, which bounds sessions to L events). Because a session never crosses an epoch, everything at a
position is computed from that epoch alone: no state is carried from earlier positions, so generation
can start anywhere (replay, Spark partitions) and is byte-identical wherever it starts.

Each lane owns the users `u` with `u % K == lane`, so a user is never in two sessions at once.
The wall-clock length of a session follows from the rate: a session of n events spans about
n * K / rate seconds (the realism report prints it for a given rate).

The funnel
----------
Within a session the interaction types follow a Markov chain per segment whose transitions make
incoherent funnels impossible: add_to_cart only right after a view, click or wishlist of the product in
focus (a wishlist itself follows a view),
purchase only right after add_to_cart of that product (same quantity), wishlist only right after a view.
Views and clicks pick a new product (by the user's preferred categories and popularity).
`calibrate()` solves for transition probabilities that make each segment's long-run mix of types equal
the contract's table, accounting exactly for sessions' starts and ends.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

import numpy as np

from .catalog import Catalog
from .model import (
    CART,
    CATEGORY_WEIGHTS,
    CLICK,
    DEVICE_PROFILES,
    MAX_SESSION_EVENTS,
    MEAN_SESSION_EVENTS,
    OWN_DEVICE_SHARE,
    PREFERENCE_SHARE,
    PURCHASE,
    REFERRERS,
    SEGMENT_MIX,
    VIEW,
    WISHLIST,
)
from .rng import derive_key, hash_positions, unit

START = 5  # pseudo-type: "no event yet in this session"
SESSION_START_PROBABILITY = 1.0 / MEAN_SESSION_EVENTS


@dataclass
class Events:
    """Everything about a contiguous range of positions, as parallel arrays in position order."""

    seq: np.ndarray  # uint64
    session_start: np.ndarray  # uint64: position of the session's first event (its identity)
    session_event_index: np.ndarray  # int16, 1-based
    user: np.ndarray  # int32
    product: np.ndarray  # int32
    interaction_type: np.ndarray  # int8, index into INTERACTION_TYPES
    duration_s: np.ndarray  # int16, 0 when not a view
    quantity: np.ndarray  # int8, 0 when not add_to_cart or purchase
    revenue_cents: np.ndarray  # int32 (at most $2,000 x 3)
    profile: np.ndarray  # int8, index into DEVICE_PROFILES
    referrer: np.ndarray  # int8, index into REFERRERS

    # What an epoch stores per position (24 bytes): seq and session_start are derived when sliced, from the
    # epoch's first position and the session's offset within the epoch.
    STORED: ClassVar[dict[str, type]] = {
        "session_offset": np.uint32, "session_event_index": np.int16, "user": np.int32, "product": np.int32,
        "interaction_type": np.int8, "duration_s": np.int16, "quantity": np.int8, "revenue_cents": np.int32,
        "profile": np.int8, "referrer": np.int8,
    }

    @classmethod
    def from_stored(cls, stored: dict[str, np.ndarray], base: int, start: int, stop: int) -> Events:
        """Positions base + start .. base + stop - 1 of an epoch whose first position is `base`."""
        fields = {name: value[start:stop] for name, value in stored.items() if name != "session_offset"}
        return cls(
            seq=np.arange(base + start, base + stop, dtype=np.uint64),
            session_start=stored["session_offset"][start:stop] + np.uint64(base),
            **fields,
        )

    def __len__(self) -> int:
        return int(self.seq.size)

    def slice(self, start: int, stop: int) -> Events:
        return Events(**{name: value[start:stop] for name, value in vars(self).items()})

    def copy(self) -> Events:
        return Events(**{name: value.copy() for name, value in vars(self).items()})


def _transitions(target: np.ndarray) -> np.ndarray:
    """6x5 transition matrix (rows: previous type or START) whose stationary mix is `target`.

    New focus (view or click) splits x : 1 - x; add_to_cart follows a view, click or wishlist of the
    product in focus with probability a / (v + c + w); wishlist follows a view with w / v; purchase follows
    add_to_cart with p / a. These make the flow into each type equal its target share (the flows balance:
    new-focus events then number exactly v + c).
    """
    v, c, a, p, w = target
    x = v / (v + c)
    to_cart = min(a / (v + c + w), 0.97)
    to_wish = min(w / v, 0.97 - to_cart)
    to_buy = min(p / a, 0.98)
    new = np.array([x, 1 - x, 0.0, 0.0, 0.0])
    m = np.zeros((6, 5))
    m[START] = new
    m[VIEW] = new * (1 - to_cart - to_wish) + np.array([0, 0, to_cart, 0, to_wish])
    m[CLICK] = new * (1 - to_cart) + np.array([0, 0, to_cart, 0, 0])
    m[CART] = new * (1 - to_buy) + np.array([0, 0, 0, to_buy, 0])
    m[PURCHASE] = new
    m[WISHLIST] = m[CLICK]
    return m


def _age_weights(length: int, start_probability: float) -> np.ndarray:
    """Share of all events that are a session's (a+1)-th event, for a = 0 .. length-1."""
    q = start_probability
    weights = np.zeros(length)
    for j in range(length):  # lane step within the epoch, each equally likely
        ages = np.arange(j + 1)
        p = q * (1 - q) ** ages
        p[j] = (1 - q) ** j  # no restart since the forced one at j = 0
        weights[: j + 1] += p
    return weights / length


def realised_mix(matrix: np.ndarray, age_weights: np.ndarray) -> np.ndarray:
    """Expected share of each type over a stream, given sessions' age distribution."""
    dist = matrix[START].copy()
    mix = np.zeros(5)
    for weight in age_weights:
        mix += weight * dist
        dist = dist @ matrix[:5]
    return mix


@lru_cache(maxsize=4)
def calibrate(length: int = MAX_SESSION_EVENTS, start_probability: float = SESSION_START_PROBABILITY) -> np.ndarray:
    """Cumulative transition tables, shape (segments, 6, 5), calibrated to SEGMENT_MIX.

    Sessions always open with a view or click and may end mid-funnel, so feeding the target mix straight
    into `_transitions` would over-produce views. We iterate on the mix we ask for until the mix we get
    (computed exactly, not sampled) matches the contract.
    """
    ages = _age_weights(length, start_probability)
    tables = np.empty((len(SEGMENT_MIX), 6, 5))
    for s, target in enumerate(SEGMENT_MIX):
        asked = target.copy()
        for _ in range(500):
            got = realised_mix(_transitions(asked), ages)
            if np.abs(got - target).max() < 1e-7:
                break
            asked = np.clip(asked * target / got, 1e-6, None)
            asked /= asked.sum()
        tables[s] = np.cumsum(_transitions(asked), axis=1)
    tables[:, :, -1] = 1.0  # guard rounding: the last bucket always catches u < 1
    return tables


_LUT_SIZE = 1 << 12
TYPE_BITS = 12  # u quantised to 1/4096 for the next-type lookup


def _next_type_table(cumulative: np.ndarray) -> np.ndarray:
    """Flat int8 table: index (segment * 6 + previous) * 4096 + floor(u * 4096) -> next type.

    One gather per step instead of comparing u against four thresholds per lane; quantising u moves
    each type's share by less than 1/4096.
    """
    centres = (np.arange(1 << TYPE_BITS) + 0.5) / (1 << TYPE_BITS)
    kinds: np.ndarray = (centres[None, None, :, None] >= cumulative[:, :, None, :4]).sum(axis=3)
    return kinds.astype(np.int8).ravel()


def _lookup_table(shares: list[float]) -> np.ndarray:
    """Maps floor(u * 4096) to an index drawn with the given shares (to 1/4096).

    For small categorical draws (devices, referrers, categories) a table lookup is several times
    cheaper than a binary search per event.
    """
    cdf = np.cumsum(np.asarray(shares, dtype=np.float64))
    cdf /= cdf[-1]
    centres = (np.arange(_LUT_SIZE) + 0.5) / _LUT_SIZE
    return np.minimum(np.searchsorted(cdf, centres, side="right"), len(shares) - 1).astype(np.int8)


def _draw(table: np.ndarray, u: np.ndarray) -> np.ndarray:
    return table[(u * _LUT_SIZE).astype(np.intp)]


class Behaviour:
    """Computes `Events` for any range of one shard's stream."""

    # Lanes computed together: bounds the temporaries (a whole 16,384-lane epoch at once peaked at
    # 180 MB per worker; 2,048 lanes keep it near 60 MB) while keeping numpy calls large.
    LANE_CHUNK = 2048

    def __init__(self, catalog: Catalog, shard: int, cached_epochs: int = 1) -> None:
        """`cached_epochs`: epochs kept computed (about 21 MB each with the default catalog). A producer reads
        forwards and needs one; a server answering several offset requests at once keeps a few, or requests
        in different epochs would recompute a whole epoch for every batch they read."""
        self.catalog = catalog
        self.shard = shard
        self.lanes = catalog.config.lanes
        self.steps = MAX_SESSION_EVENTS
        self.epoch_events = self.lanes * self.steps
        seed = catalog.config.seed
        self._keys = [derive_key(seed, shard, purpose) for purpose in (1, 2, 3, 4)]
        self._next_type = _next_type_table(calibrate())
        lane = np.arange(self.lanes, dtype=np.int64)
        self._users_in_lane = ((catalog.n_users - lane + self.lanes - 1) // self.lanes).astype(np.float64)
        self._profile_table = _lookup_table([p[3] for p in DEVICE_PROFILES])
        self._referrer_table = _lookup_table([r[1] for r in REFERRERS])
        self._category_table = _lookup_table(list(CATEGORY_WEIGHTS))
        # Computed epochs, least recently used first. Their buffers are reused for the next epoch:
        # allocating ~20 MB per epoch costs page faults.
        self._cached_epochs = max(1, cached_epochs)
        self._epochs: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()

    def events(self, first: int, count: int) -> Events:
        """Events at positions first .. first + count - 1.

        The arrays may be views of a buffer that the next call reuses: use them before calling again.
        """
        if count <= 0:
            return Events.from_stored(self._epoch(first // self.epoch_events), first, 0, 0)
        parts: list[Events] = []
        position, end = first, first + count
        while position < end:
            epoch, offset = divmod(position, self.epoch_events)
            take = min(end - position, self.epoch_events - offset)
            part = Events.from_stored(self._epoch(epoch), epoch * self.epoch_events, offset, offset + take)
            parts.append(part if position + take == end and not parts else part.copy())
            position += take
        if len(parts) == 1:
            return parts[0]
        return Events(**{name: np.concatenate([vars(p)[name] for p in parts]) for name in vars(parts[0])})

    def _epoch(self, epoch: int) -> dict[str, np.ndarray]:
        # Streams are read forwards, a block at a time: keeping computed epochs makes that O(1) per block.
        stored = self._epochs.get(epoch)
        if stored is not None:
            self._epochs.move_to_end(epoch)
            return stored
        if len(self._epochs) >= self._cached_epochs:
            _, stored = self._epochs.popitem(last=False)
        else:
            stored = {name: np.empty(self.epoch_events, dtype=dt) for name, dt in Events.STORED.items()}
        grid = {name: value.reshape(self.steps, self.lanes) for name, value in stored.items()}
        for first_lane in range(0, self.lanes, self.LANE_CHUNK):
            self._compute_lanes(grid, epoch, first_lane, min(self.lanes, first_lane + self.LANE_CHUNK))
        self._epochs[epoch] = stored  # only once complete: an exception leaves no torn epoch behind
        return stored

    def _compute_lanes(self, out: dict[str, np.ndarray], epoch: int, lane_start: int, lane_stop: int) -> None:
        """Fill an epoch's (steps, lanes) grids for lanes lane_start .. lane_stop - 1, all steps."""
        cat = self.catalog
        steps = self.steps
        base = epoch * self.epoch_events
        lane = np.arange(lane_start, lane_stop, dtype=np.int64)[None, :]
        step = np.arange(steps, dtype=np.int64)[:, None]
        positions = (base + step * self.lanes + lane).astype(np.uint64)
        w1, w2, w3, w4 = (hash_positions(key, positions) for key in self._keys)
        width = lane_stop - lane_start
        column = np.arange(width, dtype=np.int64)[None, :]

        # Session boundaries and per-session draws (taken at the session's first position).
        starts = unit(w1, 0) < SESSION_START_PROBABILITY
        starts[0] = True
        first_step = np.maximum.accumulate(np.where(starts, step, 0), axis=0)
        session_word = w2[first_step, column]
        session_word_b = w1[first_step, column]
        user = (lane + self.lanes * np.floor(unit(session_word, 0) * self._users_in_lane[lane])).astype(np.int32)
        own_device = unit(session_word, 1) < OWN_DEVICE_SHARE
        any_device = _draw(self._profile_table, unit(session_word, 2))
        profile = np.where(own_device, cat.user_profile[user], any_device).astype(np.int8)
        referrer = _draw(self._referrer_table, unit(session_word_b, 1))
        segment = cat.user_segment[user]

        # Per-event draws: the product a view or click would pick, the page time, the quantity.
        u_pref = unit(w3, 0)
        preferred = u_pref < PREFERENCE_SHARE
        pref_slot = np.floor(u_pref / PREFERENCE_SHARE * cat.user_pref_count[user]).astype(np.int64)
        pref_category = cat.user_prefs[user, np.minimum(pref_slot, 3)]
        u_other = np.clip((u_pref - PREFERENCE_SHARE) / (1 - PREFERENCE_SHARE), 0, 1 - 1e-12)
        any_category = _draw(self._category_table, u_other)
        category = np.where(preferred, pref_category, any_category).astype(np.int64)
        candidate = cat.pick_products(category, unit(w1, 2), unit(w4, 0))
        u_view = unit(w3, 1)
        view_seconds = (5 + 296 * (u_view * u_view * u_view)).astype(np.int16)  # 5-300 s, median about 42 s
        u_qty = unit(w3, 2)
        cart_quantity = (1 + (u_qty > 0.7) + (u_qty > 0.9)).astype(np.int8)

        # The funnel: one vectorised Markov step per lane step (L iterations over the chunk's lanes).
        # The next type is one lookup in a (segment, previous type, u) table, u quantised to 1/4096.
        type_row = (segment.astype(np.int32) * (6 << TYPE_BITS)
                    + ((w1 >> np.uint64(21)) & np.uint64((1 << TYPE_BITS) - 1)).astype(np.int32))
        types = np.empty((steps, width), dtype=np.int8)
        products = np.empty((steps, width), dtype=np.int32)
        quantities = np.empty((steps, width), dtype=np.int8)
        prev = np.full(width, START << TYPE_BITS, dtype=np.int32)
        start_row = np.int32(START << TYPE_BITS)
        focus = np.zeros(width, dtype=np.int32)
        held = np.zeros(width, dtype=np.int8)
        for j in range(steps):
            prev = np.where(starts[j], start_row, prev)
            kind = self._next_type[type_row[j] + prev]
            focus = np.where(kind <= CLICK, candidate[j], focus)
            held = np.where(kind == CART, cart_quantity[j], held)
            types[j], products[j], quantities[j] = kind, focus, held
            prev = kind.astype(np.int32) << TYPE_BITS

        in_cart = (types == CART) | (types == PURCHASE)
        quantity = np.where(in_cart, quantities, 0).astype(np.int8)
        cols = slice(lane_start, lane_stop)
        out["session_offset"][:, cols] = first_step * self.lanes + lane
        out["session_event_index"][:, cols] = step - first_step + 1
        out["user"][:, cols] = user
        out["product"][:, cols] = products
        out["interaction_type"][:, cols] = types
        out["duration_s"][:, cols] = np.where(types == VIEW, view_seconds, 0)
        out["quantity"][:, cols] = quantity
        revenue = np.zeros(types.shape, dtype=np.int32)
        bought = types == PURCHASE
        revenue[bought] = cat.product_price_cents[products[bought]] * quantity[bought]
        out["revenue_cents"][:, cols] = revenue
        out["profile"][:, cols] = profile
        out["referrer"][:, cols] = referrer
