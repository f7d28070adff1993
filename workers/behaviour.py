"""The store in its own event time: who visits when, what each session does, at every position of a stream.

A stream is the activity of the store (or of one partition of its users) from `start_ms` on, in
event-time order: position p is the p-th event with timestamp >= start_ms. Everything below is a pure
function of (seed, shard, partition, start_ms) and counter-based hashes (`rng.py`), so any range of
positions can be computed without generating what comes before it, byte-identically.

Epochs and the event budget
---------------------------
Event time is cut into epochs: four days for the default store, a week for small ones, down to 2 hours
for 10M users, so an epoch holds at most ~200k events (~8 MB). The design suggested one day; longer
epochs for small stores amortise the few hundred numpy calls each epoch costs whatever its size (one-day
epochs of 20k events ran at half the speed). Sessions belong to the epoch they START in; a session
lasts at most an hour, so it spills at most into the next epoch. The events of epoch D are those of
sessions started in D with time before D's end, plus the spill of sessions started in D-1, sorted by time.

How many events the sessions started in epoch e hold, E(e), is a closed form of the expected activity
(hour-of-week profile x active users per class x their visit rates x mean events per session, summed
per hour): the epoch draws sessions (with a margin) until their events reach E(e) exactly, truncating
the last one. Sessions are counted in draw order, which is independent of time, so the cut removes
sessions evenly over the epoch. Then the number of positions before epoch D is
    sum(E(e0-1 .. D-1)) - spill(D-1) - before(start)
(the spills telescope): closed-form sums, one epoch's spill and a one-off count of the events before the
start inside the first epochs. `position_at(t)` and position -> epoch need no scan from position 0.

Sessions
--------
A session draws its user's class (segment x activity tier) with weight "active users of the class x
their sessions per day", then a user of that class uniformly (a random registered block of ids,
`users.py`), redrawn up to ROUNDS times while that user is not registered yet or has churned at the
session's start. Each user has a phase (0-3): its sessions start only in the half-hour of every two
hours that the phase names, and one user has at most one session per such window (duplicates are
dropped). A session lasts <= 60 min, so the same user's next session starts >= 30 min after the last
ended, and two sessions of one user never overlap (also across workers: partition w of W only draws
users of the id blocks b with b % W == w). The start time within the user's windows follows the
hour-of-week profile (daily cycle ~4x, busier weekends).

What a session does
-------------------
Stage 1 (`_compute_timing`) runs every drawn session's chain in `funnel.py`: each event's type, time on
the page and time, when the session ends (by what just happened, a bounce, the 60-minute cut) and its
checkouts. Types come before products because the epoch's budget counts events, and how many events a
session has depends on what it does. Stage 2 (`_compute_sessions`) then gives each view and click its
product by the session's intent, knowing whether it is about to be carted (`intent.py`), carries it to the
cart, wishlist and purchase events that follow, and makes each checkout buy the session's carted items in
order (`_checkout`). Funnels stay coherent by construction: add_to_cart only right after a view, click or
wishlist of the product in focus, wishlist only after a view, purchase only of an item in the cart.
Stage 3 (`_compute_epoch`) merges the sessions' events into event-time order.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import ClassVar

import numpy as np

from .assortment import group_of
from .catalog import Catalog
from .funnel import Chain, Draws, calibration, run_chain, session_conversion
from .intent import Intents
from .model import (
    CART,
    CLICK,
    DEVICE_PROFILES,
    HOURLY_ACTIVITY,
    MS_PER_DAY,
    MS_PER_HOUR,
    MS_PER_MINUTE,
    OWN_DEVICE_SHARE,
    PURCHASE,
    REFERRERS,
    VIEW,
    WEEKEND_FACTOR,
    WEEKEND_MORNING_SHIFT_H,
    WISHLIST,
    ModelConfig,
)
from .rng import derive_key, hash_positions, hash_scaled, hash_words, mix64_in_place, scale, unit, unit_bits
from .shares import SHARE_TABLE_SIZE, UnitSearch, draw_by_share, share_table
from .users import BLOCK, CLASS_SEGMENT, CLASS_SESSIONS_PER_DAY, N_CLASSES, USER_ID_CAPACITY, Users

WINDOW_MS = 30 * MS_PER_MINUTE
PHASES = 4  # windows per two hours: a user's phase is one of them
ROUNDS = 16  # redraws of a session's user while the drawn one is not active
ROUND_BATCH_ROWS = 8192  # redraw rounds run together while pending draws x rounds stay under this
# Multiples of two hours, so every epoch holds every phase's windows equally. Small stores take long epochs:
# each epoch costs a few hundred numpy calls whatever its size, which dominated one-day epochs of 20k events.
EPOCH_HOURS = (168, 120, 96, 72, 48, 24, 12, 8, 6, 4, 2)
EPOCH_TARGET_EVENTS = 200_000  # ~8 MB per cached epoch; a worker keeps three or four
CHAIN_MARGIN = 1.04  # the chain runs on sessions expected to hold 4 % more events than the budget needs
DRAW_MARGIN = 1.06  # an epoch draws 6 % more sessions than the last one needed for its budget
SESSION_FIELDS = ("session_key", "user", "segment", "city", "profile", "referrer")  # Events' fields of a session
E_CHUNK = 256  # epochs whose budgets are computed together (always in the same aligned chunks)


@dataclass
class Events:
    """Everything about a contiguous range of positions, as parallel arrays in position (= time) order."""

    seq: np.ndarray  # uint64
    time_ms: np.ndarray  # int64, event time
    session_key: np.ndarray  # uint64: (start epoch << 28 | draw index), unique per session of a stream
    session_event_index: np.ndarray  # int16, 1-based
    user: np.ndarray  # int32
    segment: np.ndarray  # int8, index into SEGMENTS
    city: np.ndarray  # int32, index into the catalog's cities
    product: np.ndarray  # int32
    interaction_type: np.ndarray  # int8, index into INTERACTION_TYPES
    duration_s: np.ndarray  # int16, 0 when not a view
    quantity: np.ndarray  # int8, 0 when not add_to_cart or purchase
    revenue_cents: np.ndarray  # int32 (at most $2,000 x 3)
    order_index: np.ndarray  # int8: a purchase's order in its session (1, 2 ...), 0 for other events
    profile: np.ndarray  # int8, index into DEVICE_PROFILES
    referrer: np.ndarray  # int8, index into REFERRERS

    STORED: ClassVar[tuple[str, ...]] = (
        "time_ms", "session_key", "session_event_index", "user", "segment", "city", "product",
        "interaction_type", "duration_s", "quantity", "revenue_cents", "order_index", "profile", "referrer",
    )

    @classmethod
    def from_stored(cls, stored: dict[str, np.ndarray], base: int, start: int, stop: int) -> Events:
        """Positions base + start .. base + stop - 1 of an epoch whose first position is `base`."""
        fields = {name: stored[name][start:stop] for name in cls.STORED}
        return cls(seq=np.arange(base + start, base + stop, dtype=np.uint64), **fields)

    def __len__(self) -> int:
        return int(self.seq.size)

    def slice(self, start: int, stop: int) -> Events:
        return Events(**{name: value[start:stop] for name, value in vars(self).items()})

    def copy(self) -> Events:
        return Events(**{name: value.copy() for name, value in vars(self).items()})


# ---- time: the weekly profile, pages and think times ----


@lru_cache(maxsize=1)
def hour_of_week_activity() -> np.ndarray:
    """Relative activity per hour of the week (Monday 00:00 UTC first), mean 1."""
    hourly = np.asarray(HOURLY_ACTIVITY)
    weekend = WEEKEND_FACTOR * np.roll(hourly, WEEKEND_MORNING_SHIFT_H)
    week = np.concatenate([hourly] * 5 + [weekend] * 2)
    return np.asarray(week / week.mean())


def hour_of_week(time_ms: np.ndarray) -> np.ndarray:
    """0..167 for Monday 00h .. Sunday 23h (1970-01-01 was a Thursday)."""
    t = np.asarray(time_ms, dtype=np.int64)
    return ((t // MS_PER_DAY + 3) % 7) * 24 + (t // MS_PER_HOUR) % 24


def class_events_per_session(funnel: str) -> np.ndarray:
    """Mean events of a session of each class (its segment's, from the funnel's calibration)."""
    return np.asarray(calibration(funnel).events_per_session[CLASS_SEGMENT])


def epoch_ms_for(config: ModelConfig, users: Users) -> int:
    """The longest epoch (a divisor of a day, >= 2 h) whose expected events stay under EPOCH_TARGET_EVENTS."""
    from ..limits import DEFAULT_START_MS

    alive = users.class_alive(np.array([DEFAULT_START_MS + 365 * MS_PER_DAY // 2]))[0]
    events_per_day = alive * CLASS_SESSIONS_PER_DAY * class_events_per_session(config.funnel)
    per_day = float(events_per_day.sum()) * max(hour_of_week_activity())
    for hours in EPOCH_HOURS:
        if per_day * hours / 24 <= EPOCH_TARGET_EVENTS:
            return hours * MS_PER_HOUR
    return EPOCH_HOURS[-1] * MS_PER_HOUR


class Behaviour:
    """Computes `Events` for any range of positions of one stream (seed, shard, start_ms, partition)."""

    def __init__(self, catalog: Catalog, shard: int, start_ms: int, partition: int = 0, partitions: int = 1,
                 cached_epochs: int = 1) -> None:
        """`cached_epochs`: time epochs kept computed. A producer reads forwards and needs one; a server
        answering several offset requests at once keeps a few."""
        if not 0 <= partition < partitions:
            raise ValueError(f"partition must be in 0..{partitions - 1}, got {partition}")
        self.catalog = catalog
        self.users = catalog.users
        self.shard, self.start_ms = shard, int(start_ms)
        self.partition, self.partitions = partition, partitions
        self.epoch_ms = epoch_ms_for(catalog.config, self.users)
        self.e0 = self.start_ms // self.epoch_ms
        seed = catalog.config.seed
        self._keys = [derive_key(seed, shard, partition, partitions, purpose) for purpose in range(8 + ROUNDS)]
        self._round_keys = np.array(self._keys[8:], dtype=np.uint64)  # _redraw's, one row per round
        self._product_keys = [derive_key(seed, shard, partition, partitions, 0x9D0, word) for word in range(3)]
        funnel = calibration(catalog.config.funnel)
        self._chain = funnel.params
        self._profile_table = share_table([p[3] for p in DEVICE_PROFILES])
        self._referrer_table = share_table([r[1] for r in REFERRERS])
        self._class_events = class_events_per_session(catalog.config.funnel)
        self._mean_events = float(funnel.events_per_session.min())  # sizes the first draw: errs on more
        self._segment_events = funnel.events_per_session  # sizes the chain's runs (_chain_to)
        self._draws_per_event: float | None = None  # what the last epoch computed needed (_first_draws)
        self._intents = Intents(catalog)
        self._budget_chunks: dict[int, np.ndarray] = {}
        self._cum = np.zeros(1, dtype=np.int64)  # _cum[k] = sum of E(e0 - 1 .. e0 - 2 + k)
        self._before: int | None = None
        self._spills: dict[int, int] = {}
        self._cached_epochs = max(1, cached_epochs)
        self._epochs: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()
        self._timings: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()
        self._sessions: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()

    # ---- the closed form ----

    def events_per_second(self, time_ms: int | np.ndarray) -> np.ndarray | float:
        """Expected events per second of this stream at event time `time_ms` (A(t) / partitions)."""
        t = np.atleast_1d(np.asarray(time_ms, dtype=np.int64))
        alive = self.users.class_alive(t)
        events_per_ms = (alive * CLASS_SESSIONS_PER_DAY * self._class_events).sum(axis=1) / MS_PER_DAY
        rate = events_per_ms * 1000 * hour_of_week_activity()[hour_of_week(t)]
        rate = rate / self.partitions
        return float(rate[0]) if np.ndim(time_ms) == 0 else rate

    def budget(self, epoch: int) -> int:
        """E(epoch): events of the sessions that start in `epoch`, in closed form."""
        return int(self._budget_chunk(epoch // E_CHUNK)[epoch % E_CHUNK])

    def _budget_chunk(self, chunk: int) -> np.ndarray:
        budgets = self._budget_chunks.get(chunk)
        if budgets is None:
            hours = self.epoch_ms // MS_PER_HOUR
            starts = (chunk * E_CHUNK + np.arange(E_CHUNK, dtype=np.int64)) * self.epoch_ms
            mids = (starts[:, None] + np.arange(hours, dtype=np.int64)[None, :] * MS_PER_HOUR + MS_PER_HOUR // 2)
            per_s = np.asarray(self.events_per_second(mids.ravel())).reshape(E_CHUNK, hours)
            budgets = np.rint(per_s.sum(axis=1) * 3600).astype(np.int64)
            if len(self._budget_chunks) > 64:
                self._budget_chunks.clear()
            self._budget_chunks[chunk] = budgets
        return budgets

    def _budgets(self, first: int, count: int) -> np.ndarray:
        """E(first .. first + count - 1), a chunk of epochs at a time (no Python work per epoch)."""
        chunks = range(first // E_CHUNK, (first + count - 1) // E_CHUNK + 1)
        joined = np.concatenate([self._budget_chunk(c) for c in chunks])
        offset = first - chunks[0] * E_CHUNK
        return joined[offset : offset + count]

    def _cumulative(self, k: int) -> int:
        """sum of E(e0 - 1 .. e0 - 2 + k)."""
        while self._cum.size <= k:
            first = self.e0 - 1 + self._cum.size - 1
            extra = self._budgets(first, max(64, self._cum.size))
            self._cum = np.concatenate([self._cum, self._cum[-1] + np.cumsum(extra)])
        return int(self._cum[k])

    def before_start(self) -> int:
        """Events of sessions started in epochs e0 - 1 and e0 with time before start_ms."""
        if self._before is None:
            total = 0
            for e in (self.e0 - 1, self.e0):
                total += int((self._timing(e)["time_ms"] < self.start_ms).sum())
            self._before = total
        return self._before

    def spill(self, epoch: int) -> int:
        """Events of sessions started in `epoch` that happen in the next epoch."""
        spill = self._spills.get(epoch)
        if spill is None:
            if len(self._spills) > 4096:
                self._spills.clear()
            spill = self._spills[epoch] = int((self._timing(epoch)["time_ms"] >= (epoch + 1) * self.epoch_ms).sum())
        return spill

    def first_position(self, epoch: int) -> int:
        """Positions of the stream before the first event of time epoch `epoch` (>= e0)."""
        if epoch <= self.e0:
            return 0
        return self._cumulative(epoch - self.e0 + 1) - self.spill(epoch - 1) - self.before_start()

    def epoch_of_position(self, position: int) -> int:
        """The time epoch holding `position`."""
        before = self.before_start()
        k = 1
        while self._cumulative(k) - before <= position:  # grow the closed-form sums far enough
            k *= 2
        upper = int(np.searchsorted(self._cum[: k + 1] - before, position, side="right")) - 1
        epoch = max(self.e0, self.e0 - 1 + upper)
        if self.first_position(epoch + 1) <= position:
            epoch += 1
        return epoch

    def position_at(self, time_ms: int) -> int:
        """How many positions have event time < time_ms."""
        if time_ms <= self.start_ms:
            return 0
        epoch = time_ms // self.epoch_ms
        own = self._timing(epoch)["time_ms"]
        spilled = self._timing(epoch - 1)["time_ms"]
        low = self.start_ms if epoch == self.e0 else epoch * self.epoch_ms
        count = int(((own < time_ms) & (own >= low)).sum()) + int(((spilled >= low) & (spilled < time_ms)).sum())
        return self.first_position(epoch) + count

    # ---- reading ----

    def events(self, first: int, count: int) -> Events:
        """Events at positions first .. first + count - 1.

        The arrays may be views of a buffer that the next call reuses: use them before calling again.
        """
        epoch = self.epoch_of_position(first)
        parts: list[Events] = []
        position, end = first, first + max(count, 0)
        while True:
            base = self.first_position(epoch)
            stored = self._epoch(epoch)
            size = stored["time_ms"].size
            take = min(end - position, base + size - position)
            part = Events.from_stored(stored, base, position - base, position - base + max(take, 0))
            if position + take >= end and not parts:
                return part
            parts.append(part.copy())
            position += take
            if position >= end:
                break
            epoch += 1
        return Events(**{name: np.concatenate([vars(p)[name] for p in parts]) for name in vars(parts[0])})

    # ---- caches ----

    @staticmethod
    def _cached(cache: OrderedDict[int, dict[str, np.ndarray]], key: int, size: int,
                compute: object) -> dict[str, np.ndarray]:
        value = cache.get(key)
        if value is not None:
            cache.move_to_end(key)
            return value
        assert callable(compute)
        value = compute(key)
        assert isinstance(value, dict)
        cache[key] = value
        while len(cache) > size:
            cache.popitem(last=False)
        return value

    def _timing(self, epoch: int) -> dict[str, np.ndarray]:
        return self._cached(self._timings, epoch, 4, self._compute_timing)

    def _session_epoch(self, epoch: int) -> dict[str, np.ndarray]:
        return self._cached(self._sessions, epoch, 2, self._compute_sessions)

    def _epoch(self, epoch: int) -> dict[str, np.ndarray]:
        return self._cached(self._epochs, epoch, self._cached_epochs, self._compute_epoch)

    # ---- stage 1: sessions and their events' times ----

    def _hash(self, purpose: int, counters: np.ndarray) -> np.ndarray:
        return hash_positions(self._keys[purpose], counters)

    def _draw_sessions(self, epoch: int, n_draw: int) -> dict[str, np.ndarray]:
        """Draws 0 .. n_draw - 1 of an epoch: user, start time, planned events; invalid ones removed."""
        users = self.users
        start = epoch * self.epoch_ms
        draw = np.arange(n_draw, dtype=np.int64)
        counters = (np.uint64(epoch & 0xFFFFF) << np.uint64(28)) | draw.astype(np.uint64)
        word_a = self._hash(0, counters)
        # The class, weighted by its active users times their visits at the epoch's middle.
        alive = users.class_alive(np.array([start + self.epoch_ms // 2]))[0]
        weights = alive * CLASS_SESSIONS_PER_DAY
        if weights.sum() <= 0:
            return {"draw": draw[:0], "user": draw[:0], "klass": draw[:0], "start_ms": draw[:0]}
        cdf = np.cumsum(weights) / weights.sum()
        klass = np.minimum(UnitSearch(cdf)(unit_bits(word_a, 0)), N_CLASSES - 1)  # searchsorted(cdf, unit(word_a, 0))
        first_own, own_blocks = self._own_blocks(start)
        user = np.full(n_draw, -1, dtype=np.int64)
        start_ms = np.zeros(n_draw, dtype=np.int64)
        window = np.zeros(n_draw, dtype=np.int64)
        window_u = (unit(word_a, 1) * SHARE_TABLE_SIZE).astype(np.int64)
        context = _RedrawContext(start, start + self.epoch_ms, first_own, own_blocks, self._window_table(start),
                                 counters, klass, window_u)
        pending = np.flatnonzero(own_blocks[klass] > 0)
        first_round = 0
        while first_round < ROUNDS and pending.size:
            # Each round's candidate is a pure function of (draw, round), so the late rounds, with few
            # draws pending, run together (a draw keeps its first accepting round): ~8 batches of numpy
            # calls instead of 16, for some extra rows.
            rounds = range(first_round, min(ROUNDS, first_round + max(1, ROUND_BATCH_ROWS // pending.size)))
            lane, found, t, j = self._redraw(rounds, pending, context)
            hit = pending[lane]
            user[hit], start_ms[hit], window[hit] = found, t, j
            keep = np.ones(pending.size, dtype=bool)
            keep[lane] = False
            pending = pending[np.flatnonzero(keep)]
            first_round = rounds.stop
        valid = _first_per_window(user, window)
        return {"draw": valid, "user": user[valid], "klass": klass[valid], "start_ms": start_ms[valid]}

    def _redraw(self, rounds: range, pending: np.ndarray, c: _RedrawContext) -> tuple[np.ndarray, ...]:
        """Redraw `rounds` of the user of each pending draw (pending: indices of the epoch's draws), all at
        once. Returns, for the pending draws that some round accepted: their index in `pending`, and the user,
        start time and window of their first accepting round."""
        users = self.users
        z = self._round_keys[rounds.start : rounds.stop, None] ^ scale(c.counters[pending])
        word = mix64_in_place(z).ravel()  # round-major: row k * pending.size + i is round k of pending[i]
        their_class, their_window_u = (_tiled(a[pending], len(rounds)) for a in (c.klass, c.window_u))
        own = c.first_own[their_class] + (unit(word, 0) * c.own_blocks[their_class]).astype(np.int64)
        block = self.partition + self.partitions * own
        candidate = users.user_of(block, their_class, unit(word, 1))
        life = users.life_word(candidate)
        joined = users.registered_ms(candidate)
        leaves = joined + users.lifetime_ms(life, their_class)
        # Most rejections are users gone long before the epoch: only those active in it get a start time.
        near = np.flatnonzero((candidate < USER_ID_CAPACITY) & (joined < c.end) & (leaves > c.start))
        phase = users.phase_of(life[near])
        j = phase + PHASES * c.window_lut[phase * SHARE_TABLE_SIZE + their_window_u[near]]
        t = c.start + j * WINDOW_MS + (unit(word[near], 2) * WINDOW_MS).astype(np.int64)
        # Indices, not boolean masks, of these random subsets: numpy's boolean indexing is ~3x slower.
        inside = np.flatnonzero((joined[near] <= t) & (t < leaves[near]))
        accepted = near[inside]
        lane = accepted % pending.size if len(rounds) > 1 else accepted
        if len(rounds) > 1:  # the first accepting round of each: rows are round-major, np.unique is stable
            lane, first = np.unique(lane, return_index=True)
            accepted, inside = accepted[first], inside[first]
        return lane, candidate[accepted], t[inside], j[inside]

    def _window_table(self, start: int) -> np.ndarray:
        """Per phase, a 4096-quantile table of the epoch's windows weighted by the hour-of-week profile (a
        gather per draw, not a search)."""
        n_windows = self.epoch_ms // WINDOW_MS
        window_start = start + np.arange(n_windows, dtype=np.int64) * WINDOW_MS
        window_weight = hour_of_week_activity()[hour_of_week(window_start)].reshape(-1, PHASES).T
        per_phase = n_windows // PHASES
        phase_cdf = np.cumsum(window_weight, axis=1)
        phase_cdf /= phase_cdf[:, -1:]
        centres = (np.arange(SHARE_TABLE_SIZE) + 0.5) / SHARE_TABLE_SIZE
        return np.stack([np.minimum(np.searchsorted(cdf, centres, side="right"), per_phase - 1)
                         for cdf in phase_cdf]).ravel()

    def _own_blocks(self, start: int) -> tuple[np.ndarray, np.ndarray]:
        """Per class, this partition's blocks that can hold a user active in the epoch: from the oldest one
        whose users can still be alive (lifetimes are capped) to the newest registered. (first, count)."""
        registered = self.users.registered_by(start + self.epoch_ms - 1)
        first_own = -(-(self.users.oldest_block(start) - self.partition) // self.partitions)
        last_own = -(-(-(-registered // BLOCK) - self.partition) // self.partitions)
        return first_own, np.maximum(0, last_own - first_own)

    def _session_context(self, epoch: int, sessions: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Each session's device profile (mostly the user's own), referrer and intent word."""
        counters = (np.uint64(epoch & 0xFFFFF) << np.uint64(28)) | sessions["draw"].astype(np.uint64)
        word_b, word_r, intent_word = hash_words((self._keys[1], self._keys[3], self._keys[6]), counters)
        own_device = unit(word_b, 1) < OWN_DEVICE_SHARE
        anywhere = draw_by_share(self._profile_table, unit(word_b, 2))
        profile = np.where(own_device, self.users.profile(sessions["user"]), anywhere)
        referrer = draw_by_share(self._referrer_table, unit(word_r, 0))
        return {"profile": profile.astype(np.int8), "referrer": referrer, "intent_word": intent_word}

    def _event_counters(self, epoch: int, draw: np.ndarray, step: np.ndarray | int) -> np.ndarray:
        return ((np.uint64(epoch & 0xFFFFF) << np.uint64(34)) | (draw.astype(np.uint64) << np.uint64(6))
                | np.asarray(step).astype(np.uint64))

    def _event_draws(self, epoch: int, draw: np.ndarray) -> Draws:
        """The chain's two random words per (session, step): hashes of (epoch, draw, step)."""
        # A step fills the counter's low bits (zero at step 0), so counter + step is counter | step: the
        # counters are scaled once, not at every step.
        scaled = scale(self._event_counters(epoch, draw, 0))
        step_scaled = scale(np.arange(64, dtype=np.uint64))
        keys = np.array([self._keys[2], self._keys[5]], dtype=np.uint64)

        def draws(step: int, steps: int, listed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            word_a, word_b = hash_scaled(keys, scaled.take(listed) + step_scaled[step : step + steps, None])
            return word_a, word_b

        return draws

    def _compute_timing(self, epoch: int) -> dict[str, np.ndarray]:
        """Sessions started in `epoch` filling exactly E(epoch) events: each event's type, page and time.

        Layout: session-major (each session's events together and in order), sessions in draw order.
        """
        target = self.budget(epoch)
        n_draw = self._first_draws(target)
        while True:
            sessions = self._draw_sessions(epoch, n_draw)
            sessions |= self._session_context(epoch, sessions)
            chain = self._chain_to(epoch, sessions, target)
            if target == 0 or int(chain.length.sum()) >= target:
                break
            if n_draw > 50 * (target + 100):
                raise RuntimeError(f"epoch {epoch}: the store's users cannot fill {target} events")
            n_draw = n_draw * 3 // 2
        # Budget: whole sessions in draw order while they fit, the crossing one truncated.
        kept = chain.length
        final = np.clip(target - (np.cumsum(kept) - kept), 0, kept)
        used = np.flatnonzero(final)
        if used.size:
            self._draws_per_event = (int(sessions["draw"][used[-1]]) + 1) / target
        return _session_major(sessions, chain, final)

    def _first_draws(self, target: int) -> int:
        """How many draws an epoch starts with: enough for `target` events if its sessions are as long as the
        shortest segment's (errs on more), or a margin over what the last epoch computed needed. Draws are
        independent of how many are made (_draw_sessions), so this changes no event, only the work: too few
        and the epoch draws again with more."""
        if not target:
            return 0
        draws = int(target / self._mean_events * 1.12) + 32
        if self._draws_per_event is not None:
            draws = min(draws, int(target * self._draws_per_event * DRAW_MARGIN) + 32)
        return draws

    def _chain_to(self, epoch: int, sessions: dict[str, np.ndarray], target: int) -> Chain:
        """The chain of the first sessions (in draw order) whose events reach `target`, or of all of them; the
        later sessions get no events. Sessions are independent, so running the chain on a prefix sized by the
        expected events (and on further runs while short) gives the same events as running it on all."""
        segment = CLASS_SEGMENT[sessions["klass"]]
        conversion = session_conversion(sessions["profile"], sessions["referrer"])
        expected = np.cumsum(self._segment_events[segment])
        parts: list[tuple[int, Chain]] = []
        done = total = 0
        while not parts or (done < segment.size and total < target):
            # A margin of ~4 standard deviations of the prefix's events: a second run is rare.
            wanted = (target - total) * CHAIN_MARGIN + 64 + (expected[done - 1] if done else 0.0)
            stop = min(int(np.searchsorted(expected, wanted)) + 1, segment.size) if total < target else done
            draws = self._event_draws(epoch, sessions["draw"][done:stop])
            chain = run_chain(segment[done:stop], conversion[done:stop], self._chain, draws)
            parts.append((done, chain))
            done, total = stop, total + int(chain.length.sum())
        return _joined(parts, segment.size)

    # ---- stage 2: the products, carts and orders of each session ----

    def _compute_sessions(self, epoch: int) -> dict[str, np.ndarray]:
        """The stored fields of the sessions started in `epoch`, session-major: per event, except the
        SESSION_FIELDS, per session (the epoch gathers them by each event's "rank", its session)."""
        timing = self._timing(epoch)
        if "kind" not in timing:  # only its times were kept (see below): compute it again
            timing = self._compute_timing(epoch)
        # Once the sessions are done, the timing cache needs only the times (for spills and position_at):
        # keeping whole timings of four week-long epochs cost ~50 MB per worker.
        self._timings[epoch] = {"time_ms": timing["time_ms"]}
        rank, kind = timing["rank"], timing["kind"]
        s_user = timing["s_user"]
        s_segment = CLASS_SEGMENT[timing["s_klass"]]
        products = self._choose_products(epoch, timing, s_segment)
        products, quantity, order_index = _checkout(kind, rank, products, timing["quantity"])
        revenue = np.zeros(rank.size, dtype=np.int32)
        bought = np.flatnonzero(kind == PURCHASE)
        revenue[bought] = self.catalog.product_price_cents[products[bought]] * quantity[bought]
        session_key = (np.uint64(epoch) << np.uint64(28)) | timing["s_draw"].astype(np.uint64)
        return {
            "time_ms": timing["time_ms"],
            "rank": rank,
            "session_key": session_key,
            "session_event_index": (timing["step"] + 1).astype(np.int16),
            "user": s_user.astype(np.int32),
            "segment": s_segment,
            "city": self.users.city(s_user),
            "product": products,
            "interaction_type": kind,
            "duration_s": np.where(kind == VIEW, timing["page_s"], 0).astype(np.int16),
            "quantity": quantity,
            "revenue_cents": revenue,
            "order_index": order_index,
            "profile": timing["s_profile"],
            "referrer": timing["s_referrer"],
        }

    def _choose_products(self, epoch: int, timing: dict[str, np.ndarray], s_segment: np.ndarray) -> np.ndarray:
        """The product of every view and click (the product in focus until the next one): by the session's
        intent, knowing whether it is about to be carted (intent.py); -1 elsewhere."""
        intents = self._intents
        rank, kind, step = timing["rank"], timing["kind"], timing["step"]
        s_user = timing["s_user"]
        user_tier = intents.price_tier(s_user, s_segment)
        intent = intents.session_intent(s_user, user_tier, timing["s_intent_word"])
        focus = np.flatnonzero(kind <= CLICK)
        counters = self._event_counters(epoch, timing["s_draw"][rank[focus]], step[focus])
        w1, w2, w3 = hash_words(tuple(self._product_keys), counters)
        of_focus = rank[focus]
        for_cart = _about_to_be_carted(kind)[focus]
        chosen = intents.choose(tuple(part[of_focus] for part in intent), user_tier[of_focus], for_cart,
                                (w1, w2, w3))
        staple = intents.opens_on_staple(intent[0], timing["s_intent_word"])
        opening = focus[(step[focus] == 0) & staple[of_focus]]
        if opening.size:
            group = group_of(*(part[rank[opening]] for part in intent))
            chosen[np.searchsorted(focus, opening)] = intents.staple(s_user[rank[opening]], group)
        ordinal = (np.arange(of_focus.size) - _firsts(of_focus, s_user.size)[of_focus]).astype(np.int16)
        intents.follow_similar(chosen, ordinal, for_cart, w3)
        products = np.full(rank.size, -1, dtype=np.int32)
        products[focus] = chosen
        return products

    # ---- stage 3: one epoch of event time ----

    def _compute_epoch(self, epoch: int) -> dict[str, np.ndarray]:
        """Events with time in `epoch` (and >= start_ms), in time order."""
        start, end = epoch * self.epoch_ms, (epoch + 1) * self.epoch_ms
        low = max(start, self.start_ms)
        spill = self._session_epoch(epoch - 1)
        t_spill = spill["time_ms"]
        take_spill = np.flatnonzero(t_spill >= low)
        own = self._session_epoch(epoch)
        t_own = own["time_ms"]
        take_own = np.flatnonzero((t_own < end) & (t_own >= low))
        # Sort key: time within the epoch, then the place in [spill, own] (spill first, then layout order):
        # unique, so sorting the keys (about twice as fast as argsort) and masking gives the order. int64 keys
        # (rel < 2**39): numpy sorts them ~25 % faster than uint64. Each session's events are a rising run,
        # which numpy's stable sort (a merge sort that finds runs) uses: ~20 % faster than its quicksort.
        rel = np.concatenate([t_spill[take_spill], t_own[take_own]]) - start
        assert rel.size < 1 << 24, "an epoch must hold fewer than 16M events"
        key = (rel.astype(np.int64) << 24) | np.arange(rel.size, dtype=np.int64)
        key.sort(kind="stable")
        order = np.asarray(key & ((1 << 24) - 1), dtype=np.intp)
        return _gather_epoch(spill, take_spill, own, take_own, order)


def _gather_epoch(spill: dict[str, np.ndarray], take_spill: np.ndarray, own: dict[str, np.ndarray],
                  take_own: np.ndarray, order: np.ndarray) -> dict[str, np.ndarray]:
    """Every stored field of [spill[take_spill], own[take_own]] in `order`. Past the last spilled event
    the order holds only own events: those are gathered straight from `own` (one pass a field, not three)."""
    n_spill = take_spill.size
    source = np.concatenate([take_spill, take_own])[order]  # each event's index in its epoch's arrays
    from_spill = np.flatnonzero(order < n_spill)
    head = int(from_spill[-1]) + 1 if from_spill.size else 0
    from_own = np.flatnonzero(order[:head] >= n_spill)
    event_index = (source[from_spill], source[from_own], source[head:])
    # A session's fields from its (small, cached) per-session arrays: one random gather of the rank, not six.
    session_index = tuple(epoch["rank"][i] for epoch, i in zip((spill, own, own), event_index, strict=True))
    fields: dict[str, np.ndarray] = {}
    for name in Events.STORED:
        spill_index, own_index, tail = session_index if name in SESSION_FIELDS else event_index
        column = np.empty(order.size, dtype=np.result_type(spill[name], own[name]))
        column[from_spill] = spill[name][spill_index]
        column[from_own] = own[name][own_index]
        np.take(own[name], tail, out=column[head:], mode="clip")  # valid indices; "raise" would buffer
        fields[name] = column
    return fields


def _session_major(sessions: dict[str, np.ndarray], chain: Chain, final: np.ndarray) -> dict[str, np.ndarray]:
    """The kept events (the first `final[s]` of each session s) in session-major order, with the sessions'
    fields under "s_..." for the sessions that kept any."""
    session = chain.session.astype(np.intp)  # gathers index with intp: numpy's fast path
    keep = chain.step < final[session]
    alive = np.flatnonzero(final > 0)
    rank_of = np.full(final.size, -1, dtype=np.intp)
    rank_of[alive] = np.arange(alive.size)
    lengths = final[alive]
    base = np.cumsum(lengths) - lengths
    position = base[rank_of[session[keep]]] + chain.step[keep]
    rank = np.repeat(np.arange(alive.size, dtype=np.intp), lengths)
    placed: dict[str, np.ndarray] = {}
    for name in ("kind", "page_s", "offset_ms", "quantity"):
        values = getattr(chain, name)[keep]
        placed[name] = np.empty_like(values)
        placed[name][position] = values
    step = (np.arange(rank.size, dtype=np.int64) - base[rank]).astype(np.int16)
    s_fields = {f"s_{name}": value[alive] for name, value in sessions.items()}
    return {**s_fields, **placed, "rank": rank, "step": step,
            "time_ms": s_fields["s_start_ms"][rank] + placed.pop("offset_ms")}


def _joined(parts: list[tuple[int, Chain]], sessions: int) -> Chain:
    """One chain of `sessions` sessions from the chains of consecutive ranges of them, (first, chain) each."""
    length = np.zeros(sessions, dtype=np.int64)
    for first, chain in parts:
        length[first : first + chain.length.size] = chain.length
    if len(parts) == 1:
        return replace(parts[0][1], length=length)
    columns = {name: np.concatenate([getattr(chain, name) for _, chain in parts])
               for name in ("step", "kind", "page_s", "offset_ms", "quantity")}
    session = np.concatenate([chain.session + first for first, chain in parts])
    return Chain(session=session, length=length, **columns)


def _about_to_be_carted(kind: np.ndarray) -> np.ndarray:
    """Events (session-major) whose product goes into the cart next: the session's next event is an
    add_to_cart, or a wishlist followed by one. A session opens on a view or click, so an add_to_cart or a
    wishlist is never a session's first event: the next event of the same type is the same session's
    (no session comparison needed)."""
    carted = np.zeros(kind.size, dtype=bool)
    if kind.size < 2:
        return carted
    next_cart = kind[1:] == CART
    carted[:-1] = next_cart
    carted[:-2] |= (kind[1:-1] == WISHLIST) & next_cart[1:]
    return carted


def _checkout(kind: np.ndarray, rank: np.ndarray, products: np.ndarray, cart_quantity: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every event's product (a cart, wishlist or purchase is of the product in focus; the i-th purchase of a
    session buys its i-th add_to_cart, with its quantity), quantities, and each purchase's order number in
    its session (1, 2 ...; 0 for other events). Session-major order: a session opens on a product, so
    carrying the last chosen product forward never crosses into another session."""
    index = np.arange(kind.size)
    focus = np.maximum.accumulate(np.where(products >= 0, index, 0)) if kind.size else index
    products = products[focus]
    quantity = cart_quantity.astype(np.int8)  # a copy; the chain's quantities are 0 but for add_to_cart
    carts, buys = np.flatnonzero(kind == CART), np.flatnonzero(kind == PURCHASE)
    order_index = np.zeros(kind.size, dtype=np.int8)
    if buys.size:
        sessions = int(rank[-1]) + 1
        cart_base, buy_base = _firsts(rank[carts], sessions), _firsts(rank[buys], sessions)
        source = carts[cart_base[rank[buys]] + np.arange(buys.size) - buy_base[rank[buys]]]
        products[buys], quantity[buys] = products[source], quantity[source]
        opens = (kind[buys - 1] != PURCHASE) | (rank[buys - 1] != rank[buys]) | (buys == 0)
        number = np.cumsum(opens)
        first_of_session = number[np.searchsorted(rank[buys], rank[buys])]
        order_index[buys] = (number - first_of_session + 1).astype(np.int8)
    return products, quantity, order_index


def _firsts(sessions_of: np.ndarray, sessions: int) -> np.ndarray:
    """For a sorted list of session numbers, where each session's run starts in it (per session: the number
    of entries of the sessions before it)."""
    counts = np.bincount(sessions_of, minlength=sessions)
    return np.asarray(np.cumsum(counts) - counts)


@dataclass(frozen=True)
class _RedrawContext:
    """What every redraw round of an epoch's draws uses (Behaviour._redraw)."""

    start: int  # the epoch's first and last + 1 ms
    end: int
    first_own: np.ndarray  # per class: _own_blocks
    own_blocks: np.ndarray
    window_lut: np.ndarray  # _window_table
    counters: np.ndarray  # per draw: its hash counter, class and window quantile
    klass: np.ndarray
    window_u: np.ndarray


def _tiled(values: np.ndarray, times: int) -> np.ndarray:
    return values if times == 1 else np.tile(values, times)


def _first_per_window(user: np.ndarray, window: np.ndarray) -> np.ndarray:
    """The draws that found a user (user >= 0), keeping only the first draw of each (user, window): one session
    per user and window. Sorting (user, window, draw) packed in one int64 gives what
    `np.unique(..., return_index=True)` does (a stable argsort and a gather), about twice as fast."""
    valid = np.flatnonzero(user >= 0)
    assert user.size < 1 << 24, "draws must fit 24 bits"
    # user < 10**8 (27 bits), window < 4096 (<= 2048 h of half-hours, 12 bits), draw < 2**24: 63 bits, so
    # int64 keys (numpy sorts them ~25 % faster than uint64).
    key = ((user[valid] * 4096 + window[valid]).astype(np.int64) << 24) | valid.astype(np.int64)
    key.sort()
    pair = key >> 24
    first = np.ones(key.size, dtype=bool)
    np.not_equal(pair[1:], pair[:-1], out=first[1:])
    draws = np.asarray(key[first] & ((1 << 24) - 1), dtype=np.intp)
    draws.sort()
    return draws
