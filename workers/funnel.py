"""A session from its first event to its last: what each event is, when it happens, when the session ends.

The chain
---------
A session opens on a product (a view, or a click from a listing). After a view or click of the product in
focus the shopper may add it to the cart, put it on the wishlist (after a view), check out (when the cart
holds items), or move on to another product (a view or a click). After an add_to_cart the shopper browses
on or checks out. A checkout buys every item in the cart as one order: one purchase event per item, a
second or two apart (the items' products and quantities are those of their add_to_cart events: behaviour.py
gives them and the order its id). There is no removal from a cart: the five interaction types have no event
for it.

P(add_to_cart) of the product in focus is a calibrated base chance times factors of about 1 on average
(model.py): the time spent on its page (long looks convert about three times more than short ones), the
session's device and where the visit came from. After each event the session ends with a chance that
depends on that event (EXIT_AFTER: likely after the last item of an order, unlikely with a cart being
filled), with a chance of its own after the first event (a bounce); never in the middle of an order. A
session also ends when its next page would end past 60 minutes, and at MAX_SESSION_EVENTS.

Time within a session: the gap after each event is its time on the page (5-300 s; a view reports it as its
`duration`) plus a log-normal think time, so the next event always comes after the view's duration; the
items of one order are 1-3 s apart.

Calibration
-----------
Per segment, four parameters (the views' share of new products, the base add_to_cart chance, the wishlist
chance, the checkout chance) are solved so that the mix of types over a sample of simulated sessions
equals the funnel's target: the per-segment table (funnel "mix") or public retail figures ("retail"). The
sample is the chain below, fed fixed random words (the same in every iteration and every process), so the
result is deterministic; `calibration()` also gives what the rest of the model needs from the chain (events,
orders and converting sessions per session, by segment).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from .model import (
    BOUNCE,
    CART,
    CART_MOMENTUM,
    CHECKOUT_AFTER_CART,
    CLICK,
    DEVICE_CONVERSION,
    DEVICE_PROFILES,
    DWELL_CONVERSION,
    EXIT_AFTER,
    MAX_CART_CHANCE,
    MAX_SESSION_EVENTS,
    MAX_SESSION_MS,
    PAGE_SECONDS,
    PURCHASE,
    REFERRER_CONVERSION,
    REFERRERS,
    RETAIL_MIX,
    SEGMENT_MIX,
    THINK_MAX_S,
    THINK_MEDIAN_S,
    THINK_SIGMA,
    VIEW,
    WISHLIST,
)

START = 5  # pseudo-type: "no event yet in this session"
N_SEGMENTS = len(SEGMENT_MIX)
MEAN_CART_QUANTITY = (22 * 1 + 7 * 2 + 3 * 3) / 32  # an add_to_cart's items: 1, 2 or 3 (see _update_cart)
ORDER_ITEM_GAP_MS = (1000, 2048)  # items of one order: 1 s + up to 2 s apart
_TIME_LUT_BITS = 16


# ---- time on a page and between events ----


@lru_cache(maxsize=1)
def _time_tables() -> tuple[np.ndarray, np.ndarray]:
    """(page seconds int16, think ms int64) for each of 65,536 quantiles: one gather per event instead of a
    power and a logit (which cost ~50 ns per event)."""
    centres = (np.arange(1 << _TIME_LUT_BITS) + 0.5) / (1 << _TIME_LUT_BITS)
    low, high = PAGE_SECONDS
    page = np.minimum(low + np.floor((high - low + 1) * centres**3), high).astype(np.int16)
    # Log-normal through the logistic approximation of the normal quantile (z ~ 0.5513 logit(u)).
    think_s = np.minimum(THINK_MEDIAN_S * (centres / (1 - centres)) ** (0.5513 * THINK_SIGMA), THINK_MAX_S)
    return page, (think_s * 1000).astype(np.int32)


# ---- the chain ----


@dataclass(frozen=True)
class ChainParams:
    """Per segment (arrays of N_SEGMENTS): the calibrated chances, and the funnel's fixed exit chances."""

    view_share: np.ndarray  # P(view | a new product): the rest are clicks
    cart: np.ndarray  # base P(add_to_cart | a product in focus), before the conversion factors
    wish: np.ndarray  # P(wishlist | after a view)
    checkout: np.ndarray  # P(checkout | items in the cart), per event
    exit_after: np.ndarray  # (5,) P(session ends | the event's type)
    bounce: float  # P(session ends | its first event)
    cart_momentum: float  # P(add_to_cart) factor while the cart holds items
    checkout_after_cart: float  # P(checkout) factor right after an add_to_cart

    @cached_property
    def tables(self) -> _ChainTables:
        """The chain's lookup tables, computed once per params: `_at_least`'s 32-step searches on every
        `run_chain` call cost ~30 ns/event."""
        wish, checkout = _tables(self)
        return _ChainTables(
            view_at=_at_least(self.view_share.astype(np.float32), N_SEGMENTS),  # as the lanes' float32 compared
            exit_at=_at_least(np.append(self.exit_after, 0.0), 6), bounce_at=_at_least(self.bounce, 1).reshape(()),
            wish=wish.astype(np.float32), checkout=checkout.astype(np.float32))


@dataclass(frozen=True)
class _ChainTables:
    """What `run_chain` looks up, derived from a ChainParams."""

    view_at: np.ndarray  # uint32 per segment: the least bits of a view (see _at_least)
    exit_at: np.ndarray  # uint32 per type (and START): the least bits of staying
    bounce_at: np.ndarray  # 0-d uint32: the least bits of staying after the first event
    wish: np.ndarray  # float32 per (segment, previous type): P(wishlist)
    checkout: np.ndarray  # float32 per (segment, previous type): P(checkout | items in the cart)


@dataclass
class Chain:
    """Simulated sessions, event by event in step-major order (all first events, then all second ...)."""

    session: np.ndarray  # int32, index of the event's session
    step: np.ndarray  # int16, 0-based
    kind: np.ndarray  # int8, interaction type
    page_s: np.ndarray  # int16, seconds on the page
    offset_ms: np.ndarray  # int32, time since the session's first event
    quantity: np.ndarray  # int8, items of an add_to_cart (0 otherwise)
    length: np.ndarray  # int64 per session: its events


Draws = Callable[[int, int, np.ndarray], tuple[np.ndarray, np.ndarray]]  # see run_chain
TAIL_LANES = 1024  # run_chain's last steps, from when fewer lanes are left, run as _run_tail
# The loop's constants as 0-d arrays of the operands' types, not scalars: numpy takes ~1 us less per call
# with them, and each of the chain's ~40 steps makes ~90 calls whatever its lanes (late steps have a few
# hundred, where this per-call time is most of the cost). Same types, so the same results.
_U32 = np.array(1.0 / 2**32, dtype=np.float32)
_INT8 = {value: np.array(value, dtype=np.int8) for value in (CLICK, CART, PURCHASE, 4)}
_INT16 = {value: np.array(value, dtype=np.int16) for value in (0, 1)}
_UINT16 = {value: np.array(value, dtype=np.uint16) for value in (0x1F, 5, ORDER_ITEM_GAP_MS[0])}
_ONE32 = np.array(1, dtype=np.float32)
_MAX_CART32 = np.array(MAX_CART_CHANCE, dtype=np.float32)
_MS_PER_S32, _MAX_SESSION32 = np.array(1000, dtype=np.int32), np.array(MAX_SESSION_MS, dtype=np.int32)
# P(add_to_cart) factor of the time on the page, per page quantile (DWELL_CONVERSION).
_DWELL = (DWELL_CONVERSION[0] + DWELL_CONVERSION[1] * (np.arange(1 << _TIME_LUT_BITS) + 0.5)
          / (1 << _TIME_LUT_BITS)).astype(np.float32)
_NEW_KIND = np.array([CART, WISHLIST, PURCHASE, VIEW, CART, WISHLIST, PURCHASE, CLICK], dtype=np.int8)
# P(add_to_cart) factor at the next event after each type: a view or click takes its page's (_DWELL), a
# wishlist keeps the product in focus (1), after a cart or a purchase no product is in focus (0).
_FOCUS_FACTOR = np.array([1, 1, 0, 0, 1], dtype=np.float32)
# An add_to_cart's items from 5 bits: 1 (22/32), 2 (7/32), 3 (3/32).
_QUANTITY = np.array([1] * 22 + [2] * 7 + [3] * 3, dtype=np.int8)
assert np.little_endian, "_Words reads the words' bit fields through little-endian views"


class _Words:
    """The bit fields of a step's two words, as strided views (no shift-and-mask pass each)."""

    def __init__(self, word_a: np.ndarray, word_b: np.ndarray) -> None:
        b32 = word_b.view(np.uint32)
        self.think = word_a.view(np.uint16)[2::4]  # a, bits 32-47: the think time's quantile
        self.next = word_a.view(np.uint32)[0::2]  # a, bits 0-31: the next type
        self.exit = b32[0::2]  # b, bits 0-31: the exit
        self.cart = word_b.view(np.uint16)[2::4]  # b, bits 32-47: cart quantity (32-36) and an order item's gap (37-47)
        self.click = b32[1::2]  # b, bits 32-63 (48-63 decide): view or click


def _u32(half: np.ndarray) -> np.ndarray:
    """A uniform in [0, 1] from 32 bits (float32 rounds the top few up to 1.0)."""
    return half.astype(np.float32) * _U32


def _at_least(chance: np.ndarray | float, size: int) -> np.ndarray:
    """Per chance c (<= 1), the least 32-bit x with `_u32(x) >= c`: _u32 is monotone, so `x >= _at_least(c)`
    decides `_u32(x) >= c` (in the comparison's own precision) from the bits, without a float pass."""
    lo, hi = np.zeros(size, np.int64), np.full(size, 2**32 - 1, np.int64)
    assert (_u32(hi.astype(np.uint32)) >= chance).all(), "a chance above 1"
    while (lo < hi).any():
        mid = (lo + hi) // 2
        ok = _u32(mid.astype(np.uint32)) >= chance
        lo, hi = np.where(ok, lo, mid + 1), np.where(ok, mid, hi)
    return lo.astype(np.uint32)


@dataclass
class _Lanes:
    """The sessions still going, each array in the same (compacted) order."""

    session: np.ndarray  # int32, index of the session
    base: np.ndarray  # int8, segment * 6: row block of the per-(segment, previous type) tables
    key: np.ndarray  # int8, segment * 6 + previous type: row of the per-(segment, previous) tables
    cart_base: np.ndarray  # float32, base P(add_to_cart) x the session's conversion factor
    view_at: np.ndarray  # uint32, _at_least(P(view | a new product)): the least bits of a view
    cart_next: np.ndarray  # float32, P(add_to_cart) at the next event (0 unless a product is in focus)
    items: np.ndarray  # int16, carted items not yet bought
    run: np.ndarray  # int16, purchases still to come in the current checkout
    clock: np.ndarray  # int32, offset of the next event

    def keep(self, mask: np.ndarray) -> _Lanes:
        return self.take(mask.nonzero()[0])  # 1-d: np.flatnonzero's ravel and wrapper cost ~2 us a step

    def take(self, index: np.ndarray) -> _Lanes:
        # Indices, not the mask, for each array: numpy's boolean indexing of a random mask was ~3x slower.
        return _Lanes(**{name: value.take(index) for name, value in vars(self).items()})


def _tables(p: ChainParams) -> tuple[np.ndarray, np.ndarray]:
    """Per (segment, previous type): P(wishlist) and P(checkout | items in the cart)."""
    wish = np.zeros((N_SEGMENTS, 6))
    wish[:, VIEW] = p.wish
    checkout = np.repeat(p.checkout[:, None], 6, axis=1)
    checkout[:, CART] *= p.checkout_after_cart
    return wish.ravel(), checkout.ravel()


def run_chain(segment: np.ndarray, conversion: np.ndarray, params: ChainParams, draws: Draws) -> Chain:
    """Every session's events. `conversion` is each session's device x referrer factor; `draws(step, steps,
    sessions)` gives two random uint64 words per listed session for each of `steps` steps from `step`, as
    (steps, sessions) arrays (hashes in a stream, a fixed generator in calibration). Word a: page (bits
    48-63), think time (32-47), the next type (0-31); word b: exit (0-31), cart quantity and an order item's
    gap (32-47), view or click (48-63)."""
    n = segment.size
    seg = segment.astype(np.int64)
    tables = params.tables
    # Narrow types: every step compacts these arrays, and half the bytes is nearly half the time.
    lanes = _Lanes(np.arange(n, dtype=np.int32), (seg * 6).astype(np.int8), (seg * 6 + START).astype(np.int8),
                   (params.cart[seg] * conversion).astype(np.float32), tables.view_at[seg],
                   np.zeros(n, np.float32), np.zeros(n, np.int16), np.zeros(n, np.int16), np.zeros(n, np.int32))
    pages = _time_tables()[0]
    parts: list[tuple[np.ndarray, ...]] = []
    counts: list[int] = []  # events per step
    for step in range(MAX_SESSION_EVENTS):
        if lanes.session.size == 0:
            break
        if lanes.session.size < TAIL_LANES:
            _run_tail(lanes, step, params, draws, parts, counts)
            break
        all_a, all_b = draws(step, 1, lanes.session)
        word_a, word_b = all_a[0], all_b[0]
        # Gathers index with intp arrays: numpy's fast path (other index types cost ~50 % more).
        page_q = word_a.view(np.uint16)[3::4].astype(np.intp)  # bits 48-63: the page's quantile
        page = pages[page_q]
        page_ms = np.multiply(page, _MS_PER_S32, dtype=np.int32)
        fits = lanes.clock + page_ms <= _MAX_SESSION32
        if not fits.all():
            kept = np.flatnonzero(fits)
            lanes, word_a, word_b, page_q, page, page_ms = (
                lanes.take(kept), *(a.take(kept) for a in (word_a, word_b, page_q, page, page_ms)))
        kind, quantity, clock, goes_on = _advance(lanes, params, _Words(word_a, word_b), page_q, page_ms, step)
        parts.append((lanes.session, kind, page, clock, quantity))
        counts.append(lanes.session.size)
        lanes = lanes.keep(goes_on)
    return _chain(parts, counts, n)


def _run_tail(lanes: _Lanes, first_step: int, params: ChainParams, draws: Draws,
              parts: list[tuple[np.ndarray, ...]], counts: list[int]) -> None:
    """The steps from `first_step` on of the few lanes left (< TAIL_LANES), appended to parts (one part) and
    counts (one per step). There each step's ~100 numpy calls cost ~200 us whatever its lanes: the words of
    all the remaining steps come from one draw, their pages from one gather, and the lanes stay in place
    (an ended lane is masked off; its state no longer matters): no draw and no compaction per step."""
    all_a, all_b = draws(first_step, MAX_SESSION_EVENTS - first_step, lanes.session)
    all_q = all_a.view(np.uint16)[:, 3::4].astype(np.intp)  # bits 48-63: the page's quantile
    all_page = _time_tables()[0][all_q]
    all_ms = np.multiply(all_page, _MS_PER_S32, dtype=np.int32)
    alive = np.ones(lanes.session.size, dtype=bool)
    steps: list[tuple[np.ndarray, ...]] = []
    for k in range(all_a.shape[0]):
        live = alive & (lanes.clock + all_ms[k] <= _MAX_SESSION32)
        kind, quantity, clock, goes_on = _advance(lanes, params, _Words(all_a[k], all_b[k]), all_q[k], all_ms[k],
                                                  first_step + k)
        steps.append((live, kind, clock, quantity))
        alive = live & goes_on
        if not alive.any():
            break
    live, kind, clock, quantity = (np.stack(column) for column in zip(*steps, strict=True))
    lane = live.nonzero()[1]  # step-major, lanes in order: as the compacting steps give them
    parts.append((lanes.session[lane], kind[live], all_page[: live.shape[0]][live], clock[live], quantity[live]))
    counts.extend(live.sum(axis=1).tolist())


def _advance(lanes: _Lanes, params: ChainParams, words: _Words, page_q: np.ndarray, page_ms: np.ndarray,
             step: int) -> tuple[np.ndarray, ...]:
    """One step of every lane: its event's type and add_to_cart quantity, and its time (the clock before the
    step), updating the lanes' state; and which lanes go on after it (those that stay or are in an order)."""
    tables = params.tables
    in_order = lanes.run > _INT16[0]  # an order's next item comes whatever the chances
    kind = _next_kind(lanes, tables.wish, tables.checkout, words, in_order)
    quantity = _update_cart(lanes, kind, words)
    clock = lanes.clock
    in_order = lanes.run > _INT16[0]
    lanes.clock = clock + _gap(page_ms, _time_tables()[1], words, in_order)
    kind_i = kind.astype(np.intp)
    factor = np.where(kind <= _INT8[CLICK], _DWELL[page_q], _FOCUS_FACTOR[kind_i])
    momentum = np.float32(params.cart_momentum)
    if momentum != 1:  # the "mix" funnel has none, and x * 1 is x: three passes saved
        factor = factor * np.where(lanes.items > _INT16[0], momentum, _ONE32)  # buying mode
    lanes.cart_next = np.minimum(lanes.cart_base * factor, _MAX_CART32)
    lanes.key = lanes.base + kind
    stays = words.exit >= (tables.bounce_at if step == 0 else tables.exit_at[kind_i])
    return kind, quantity, clock, stays | in_order  # never ends in an order


def _next_kind(lanes: _Lanes, wish_table: np.ndarray, checkout_table: np.ndarray, words: _Words,
               in_order: np.ndarray) -> np.ndarray:
    """Each session's next type: add_to_cart, wishlist, checkout (a purchase) or a new product."""
    cart = lanes.cart_next
    key = lanes.key.astype(np.intp)
    wish = cart + wish_table[key]
    checkout = np.minimum(wish + checkout_table[key] * (lanes.items > _INT16[0]), _ONE32)
    u = _u32(words.next)
    bucket = np.add(np.add(u >= cart, u >= wish, dtype=np.int8), u >= checkout, dtype=np.int8)
    clicks = (words.click >= lanes.view_at).view(np.int8)
    return np.asarray(np.where(in_order, _INT8[PURCHASE], _NEW_KIND[(bucket + _INT8[4] * clicks).astype(np.intp)]))


def _update_cart(lanes: _Lanes, kind: np.ndarray, words: _Words) -> np.ndarray:
    """Items in the cart and purchases still to come after `kind`; returns each add_to_cart's quantity.
    A checkout empties the cart into the order, so the cart is empty while an order runs and no order runs
    otherwise (run is 0): run + items - 1 is what is left after any purchase, whether it starts the order
    or not (two passes fewer than telling the two apart)."""
    bought = kind == _INT8[PURCHASE]
    carted = kind == _INT8[CART]
    lanes.run = np.where(bought, lanes.run + lanes.items - _INT16[1], lanes.run)
    lanes.items = np.where(bought, _INT16[0], lanes.items + carted)
    return np.asarray(_QUANTITY[(words.cart & _UINT16[0x1F]).astype(np.intp)] * carted)


def _gap(page_ms: np.ndarray, thinks: np.ndarray, words: _Words, in_order: np.ndarray) -> np.ndarray:
    """Time to each session's next event: the page and a think time, or 1-3 s to an order's next item."""
    item_gap = (words.cart >> _UINT16[5]) + _UINT16[ORDER_ITEM_GAP_MS[0]]  # bits 37-47 of word b
    return np.asarray(np.where(in_order, item_gap, page_ms + thinks[words.think.astype(np.intp)]))


def _chain(parts: list[tuple[np.ndarray, ...]], counts: list[int], n: int) -> Chain:
    if not parts:
        empty = np.zeros(0, np.int64)
        return Chain(empty, empty.astype(np.int16), empty.astype(np.int8), empty.astype(np.int16), empty,
                     empty.astype(np.int8), np.zeros(n, np.int64))
    session, kind, page, offset, quantity = (np.concatenate(column) for column in zip(*parts, strict=True))
    step = np.repeat(np.arange(len(counts), dtype=np.int16), counts)
    return Chain(session, step, kind, page, offset, quantity, np.bincount(session, minlength=n))


# ---- calibration ----


def session_conversion(profile: np.ndarray, referrer: np.ndarray) -> np.ndarray:
    """Each session's device x referrer factor of P(add_to_cart), from its profile and referrer indices."""
    return np.asarray(_device_factors()[profile] * _referrer_factors()[referrer])


@lru_cache(maxsize=1)
def _device_factors() -> np.ndarray:
    return np.array([DEVICE_CONVERSION[device] for device, *_ in DEVICE_PROFILES])


@lru_cache(maxsize=1)
def _referrer_factors() -> np.ndarray:
    return np.array([REFERRER_CONVERSION.get(url, 1.0) for url, _share in REFERRERS])


def target_mix(funnel: str) -> np.ndarray:
    """(segments, 5): the interaction mix each segment's sessions should produce."""
    if funnel == "retail":
        return np.tile(np.asarray(RETAIL_MIX), (N_SEGMENTS, 1))
    return np.asarray(SEGMENT_MIX, dtype=np.float64)


@dataclass(frozen=True)
class Calibration:
    params: ChainParams
    mix: np.ndarray  # (segments, 5) the sample's mix
    events_per_session: np.ndarray  # (segments,)
    orders_per_session: np.ndarray  # (segments,)
    items_per_order: np.ndarray  # (segments,)
    unconverted_share: np.ndarray  # (segments,) share of sessions without a purchase


CALIBRATION_SESSIONS = 12_000  # per segment: the sample's mix is within ~0.2 pp of the stream's
CALIBRATION_ROUNDS = 14
CALIBRATION_TOLERANCE = 0.0005  # of a share: stop at 0.05 percentage points


@lru_cache(maxsize=2)
def calibration(funnel: str) -> Calibration:
    """The chain's parameters for `funnel`, solved on a fixed sample (see the module's docstring)."""
    target = target_mix(funnel)
    segment, conversion, draws = _sample()
    params = ChainParams(
        view_share=target[:, VIEW] / np.maximum(target[:, VIEW] + target[:, CLICK], 1e-12),
        cart=target[:, CART] * 2.0, wish=target[:, WISHLIST] * 1.0, checkout=np.full(N_SEGMENTS, 0.3),
        exit_after=np.asarray(EXIT_AFTER[funnel]), bounce=BOUNCE[funnel], cart_momentum=CART_MOMENTUM[funnel],
        checkout_after_cart=CHECKOUT_AFTER_CART[funnel])
    for _ in range(CALIBRATION_ROUNDS):
        chain = run_chain(segment, conversion, params, draws)
        got = _mix(chain, segment)
        if np.abs(got - target).max() < CALIBRATION_TOLERANCE:
            break
        params = _adjust(params, target, got)
    else:
        chain = run_chain(segment, conversion, params, draws)
    return _summary(params, chain, segment)


def _adjust(params: ChainParams, target: np.ndarray, got: np.ndarray) -> ChainParams:
    """One proportional step: each parameter moves its own share towards the target."""
    def ratio(t: np.ndarray, g: np.ndarray) -> np.ndarray:
        return np.where(t > 0, t / np.maximum(g, 1e-9), 0.0)

    got_view = got[:, VIEW] / np.maximum(got[:, VIEW] + got[:, CLICK], 1e-9)
    want_view = target[:, VIEW] / np.maximum(target[:, VIEW] + target[:, CLICK], 1e-9)
    bought = ratio(target[:, PURCHASE] / target[:, CART], got[:, PURCHASE] / np.maximum(got[:, CART], 1e-9))
    return ChainParams(
        view_share=np.clip(params.view_share * ratio(want_view, got_view), 0.0, 1.0),
        cart=np.clip(params.cart * ratio(target[:, CART], got[:, CART]), 0.0, MAX_CART_CHANCE),
        wish=np.clip(params.wish * ratio(target[:, WISHLIST], got[:, WISHLIST]), 0.0, 0.5),
        checkout=np.clip(params.checkout * bought**2, 0.0, 1.0),  # purchases respond weakly to it
        exit_after=params.exit_after, bounce=params.bounce, cart_momentum=params.cart_momentum,
        checkout_after_cart=params.checkout_after_cart)


def _mix(chain: Chain, segment: np.ndarray) -> np.ndarray:
    cell = segment[chain.session] * 5 + chain.kind
    counts = np.bincount(cell, minlength=N_SEGMENTS * 5).reshape(N_SEGMENTS, 5).astype(np.float64)
    return np.asarray(counts / np.maximum(counts.sum(axis=1, keepdims=True), 1))


def _summary(params: ChainParams, chain: Chain, segment: np.ndarray) -> Calibration:
    sessions = np.bincount(segment, minlength=N_SEGMENTS).astype(np.float64)
    events = np.bincount(segment[chain.session], minlength=N_SEGMENTS)
    bought = chain.kind == PURCHASE
    converted = np.zeros(segment.size, dtype=bool)
    converted[chain.session[bought]] = True
    orders = _orders_per_session(chain, segment)
    purchases = np.bincount(segment[chain.session[bought]], minlength=N_SEGMENTS) / sessions
    return Calibration(params=params, mix=_mix(chain, segment), events_per_session=events / sessions,
                       orders_per_session=orders, items_per_order=purchases / np.maximum(orders, 1e-12),
                       unconverted_share=1.0 - np.bincount(segment[converted], minlength=N_SEGMENTS) / sessions)


def _orders_per_session(chain: Chain, segment: np.ndarray) -> np.ndarray:
    """Checkouts per session, by segment: purchases whose session's previous event was not a purchase."""
    order = np.lexsort((chain.step, chain.session))
    kind, session = chain.kind[order], chain.session[order]
    previous_bought = np.concatenate([[False], (kind[:-1] == PURCHASE) & (session[:-1] == session[1:])])
    first = (kind == PURCHASE) & ~previous_bought
    sessions = np.bincount(segment, minlength=N_SEGMENTS).astype(np.float64)
    return np.bincount(segment[session[first]], minlength=N_SEGMENTS) / sessions


def _sample() -> tuple[np.ndarray, np.ndarray, Draws]:
    """The calibration's sessions: CALIBRATION_SESSIONS per segment, device and referrer by their shares, and
    fixed random words per (step, session). Not cached: its 30 MB of words would stay in every process after
    the calibration (which is), and making them again costs ~20 ms."""
    rng = np.random.default_rng(20261201)
    n = CALIBRATION_SESSIONS * N_SEGMENTS
    segment = np.repeat(np.arange(N_SEGMENTS, dtype=np.int64), CALIBRATION_SESSIONS)
    profile_shares = np.array([p[3] for p in DEVICE_PROFILES])
    referrer_shares = np.array([r[1] for r in REFERRERS])
    profile = rng.choice(profile_shares.size, n, p=profile_shares / profile_shares.sum())
    referrer = rng.choice(referrer_shares.size, n, p=referrer_shares / referrer_shares.sum())
    words = rng.integers(0, 2**64, size=(MAX_SESSION_EVENTS, 2, n), dtype=np.uint64)

    def draws(step: int, steps: int, sessions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        block = words[step : step + steps]
        return block[:, 0].take(sessions, axis=1), block[:, 1].take(sessions, axis=1)

    return segment, session_conversion(profile, referrer), draws
