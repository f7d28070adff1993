"""The realism report: each target beside what the generated data measures, failing rows marked FAIL.

It measures the NDJSON a client would receive (parsed line by line, not the generator's internal arrays),
so it checks the encoder too. Lifecycle figures over 90 days (registrations, churn) come from the model's
per-user functions, which are what drives the events. `clickstream report --events 2000000 --seed 7`
prints it; `tests/test_store_model.py` asserts the same figures on a fixed seed.

Each line is parsed once into numpy columns (`columns.py`); the figures are vectorised over them, except the
per-field checks of `_field_errors`. The section "For ML use" (`ml_signal.py`) reads the same columns; its
floors are asserted by `tests/test_ml_floors.py` once the behaviour model with those signals is merged.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import ujson

from .columns import NO_ORDER, ColumnBuilder, EventColumns
from .errors import EXIT_CONFIG, ConfigError
from .limits import DEFAULT_FUNNEL, DEFAULT_START_MS
from .ml_signal import TRAIN_SHARE, ProductFacts, SignalFigures, measure_signal, signal_failed_rows
from .workers.funnel import target_mix
from .workers.generator import EventGenerator
from .workers.model import (
    CART,
    CATEGORIES,
    CATEGORY_PRICES,
    CLICK,
    INTERACTION_TYPES,
    MS_PER_DAY,
    PURCHASE,
    SEGMENT_WEIGHTS,
    SEGMENTS,
    VIEW,
    WISHLIST,
    ModelConfig,
)

MIX_TOLERANCE_PP = 1.5
HORIZON_DAYS = 90
SESSION_GAP_MS = 30 * 60_000


@dataclass
class Figures:
    events: int
    start_ms: int
    user_segment_share: dict[str, float]
    event_segment_share: dict[str, float]
    mix: dict[str, dict[str, float]]  # segment -> type -> share
    mix_max_error_pp: float
    mix_tolerance_pp: float  # 1.5 pp widened by 3 binomial standard errors of the smallest sample
    price_range: dict[str, tuple[float, float]]
    price_out_of_range: int
    funnel_checked_sessions: int
    funnel_violations: int
    funnel_violation_examples: list[str]
    events_per_session: dict[str, float]
    session_minutes: dict[str, float]  # complete sessions: first event to the end of the last page
    gap_seconds: dict[str, float]  # between consecutive events of one session
    view_gap_coherence: float  # share of views followed (in their session) no sooner than their duration
    sessionization_agreement: float  # share of events whose 30-minute sessionization group == session_id
    overlapping_sessions: int  # pairs of one user's consecutive sessions that overlap in time
    min_user_gap_minutes: float  # shortest inactivity between two sessions of one user
    busiest_quietest_hour: float  # events per hour of day, busiest / quietest
    weekend_weekday: float  # events per weekend day / per weekday
    top10pct_user_share: float  # share of events by the 10 % most active users seen
    model_top10pct_share: float  # the same from the model's visit rates of the users active at the start
    whole_days: int  # whole days of event time in the sample (for the cycles)
    weekend_days: int
    segment_sessions_per_user: dict[str, float]  # sessions per distinct user seen, per segment
    segment_purchases_per_user: dict[str, float]
    steady_start_continuing: float  # share of events in the first 1000 that continue a session
    steady_later_continuing: float  # the same share over the whole sample
    steady_start_purchases: int  # purchases among the first 1000 events
    days_covered: float
    events_before_registration: int
    events_after_churn: int
    registered_90d: int
    churned_90d: int
    active_at_start: int
    catalog_inconsistencies: int  # catalog users breaking the orders/spend/date rules as of the start
    catalog_vs_stream_purchases: dict[str, float]  # per segment: stream orders per active user-day / catalog's
    fewest_expected_purchases: float  # the smallest segment's expected orders behind that ratio
    top1pct_product_view_share: float
    distinct_users: int
    distinct_products: int
    field_errors: int  # revenue, quantity, duration or page_url not as specified
    timestamps_non_decreasing: bool
    rows: list[tuple[str, str, str, bool | None]] = field(default_factory=list)
    signal: SignalFigures | None = None  # the section "For ML use"


def _quantiles(values: np.ndarray) -> dict[str, float]:
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        return {"mean": 0.0, "p50": 0.0, "p95": 0.0, "max": 0.0, "min": 0.0}
    return {
        "mean": round(float(array.mean()), 2),
        "min": round(float(array.min()), 2),
        "p50": round(float(np.percentile(array, 50)), 2),
        "p95": round(float(np.percentile(array, 95)), 2),
        "max": round(float(array.max()), 2),
    }


def _progress(done: int, total: int, started: float) -> None:
    print(f"\rreport: {done:,}/{total:,} events ({done / total:.0%}, {time.perf_counter() - started:.0f} s)",
          end="" if done < total else "\n", file=sys.stderr, flush=True)


def _parse(generator: EventGenerator, events: int, first_seq: int, progress: bool) -> tuple[EventColumns, int]:
    """Render the events and parse each NDJSON line once, as a client would: (the columns, the events with
    fields not as specified)."""
    columns, field_errors = ColumnBuilder(), 0
    started = time.perf_counter()
    chunk = 65_536
    for start in range(first_seq, first_seq + events, chunk):
        count = min(chunk, first_seq + events - start)
        for line in generator.render(start, count).tobytes().splitlines():
            e = ujson.loads(line)
            columns.add(e)
            field_errors += _field_errors(e)
        if progress:
            _progress(start + count - first_seq, events, started)
    return columns.columns(), field_errors


def _funnel_check(c: EventColumns, product_id: Callable[[int], str]) -> tuple[int, int, list[str]]:
    """(sessions seen from their event 1, events there breaking the funnel, up to 5 examples): add_to_cart of a
    product not viewed or clicked earlier in the session, purchase of one not added to its cart, wishlist
    of one not viewed. Vectorised: events grouped by (session, product) in session order, each event sees
    how many views, clicks and add_to_carts of its product came before it in the session."""
    n_sessions = len(c.session_ids) if c.session_ids else (int(c.session.max()) + 1 if len(c) else 0)
    first_index = np.full(n_sessions, 1 << 30)
    np.minimum.at(first_index, c.session, c.session_event_index)
    from_start = first_index == 1
    order = np.lexsort((c.session_event_index, c.product, c.session))
    s, p, kind = c.session[order], c.product[order], c.kind[order]
    new_group = np.ones(order.size, dtype=bool)
    new_group[1:] = (s[1:] != s[:-1]) | (p[1:] != p[:-1])
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(order.size), 0))

    def before(mask: np.ndarray) -> np.ndarray:  # events of `mask` earlier in the same (session, product)
        running: np.ndarray = np.cumsum(mask) - mask
        return np.asarray(running - running[group_start])

    viewed, touched, carted = before(kind == VIEW), before((kind == VIEW) | (kind == CLICK)), before(kind == CART)
    bad = np.zeros(order.size, dtype=np.int8)  # 1: cart, 2: purchase, 3: wishlist without what must precede
    bad[(kind == CART) & (touched == 0)] = 1
    bad[(kind == PURCHASE) & (carted == 0)] = 2
    bad[(kind == WISHLIST) & (viewed == 0)] = 3
    bad[~from_start[s]] = 0
    problems = np.sort(order[bad > 0])
    why = {1: "add_to_cart of {} never viewed or clicked in the session", 2: "purchase of {} not in the session's cart",
           3: "wishlist of {} never viewed in the session"}
    flagged = np.zeros(len(c), dtype=np.int8)
    flagged[order] = bad
    examples = [f"{c.session_ids[c.session[i]] if c.session_ids else c.session[i]} #{c.session_event_index[i]}: "
                + why[int(flagged[i])].format(product_id(int(c.product[i]))) for i in problems[:5]]
    return int(from_start.sum()), int(problems.size), examples


def _mix(parsed: EventColumns, funnel: str) -> tuple[dict[str, dict[str, float]], float, float]:
    """(segment -> type -> share, the largest error against the funnel's target mix in percentage points, the
    tolerance for it)."""
    kinds = len(INTERACTION_TYPES)
    counts = np.bincount(parsed.segment.astype(np.int64) * kinds + parsed.kind,
                         minlength=len(SEGMENTS) * kinds).reshape(len(SEGMENTS), kinds)
    mix: dict[str, dict[str, float]] = {}
    worst, smallest = 0.0, len(parsed)
    for s, segment in enumerate(SEGMENTS):
        total = int(counts[s].sum())
        smallest = min(smallest, total)
        mix[segment] = {k: int(counts[s, j]) / max(total, 1) for j, k in enumerate(INTERACTION_TYPES)}
        for k, target in zip(INTERACTION_TYPES, target_mix(funnel)[s], strict=True):
            worst = max(worst, abs(mix[segment][k] - target) * 100)
    # Events of a session are correlated, so 3 standard errors (of p = 0.5, the widest) is a loose bound.
    return mix, worst, MIX_TOLERANCE_PP + 3 * 100 * math.sqrt(0.25 / max(smallest, 1))


def _prices(parsed: EventColumns) -> tuple[dict[str, tuple[float, float]], int]:
    """(category -> lowest and highest price seen, events priced outside their category's range)."""
    seen, outside = {}, 0
    for g, (category, (low, high)) in enumerate(zip(CATEGORIES, CATEGORY_PRICES, strict=True)):
        cents = parsed.price_cents[parsed.category == g]
        if cents.size:
            seen[category] = (int(cents.min()) / 100, int(cents.max()) / 100)
            outside += int(((cents < low * 100) | (cents > high * 100)).sum())
    return seen, outside


def measure(generator: EventGenerator, events: int, first_seq: int = 0, progress: bool = False) -> Figures:
    """Generate `events` events of the generator's stream and measure them."""
    catalog = generator.catalog
    n = events
    parsed, field_errors = _parse(generator, events, first_seq, progress)
    checked_sessions, funnel_violations, violation_examples = _funnel_check(parsed, catalog.product_id)
    t, session_of, user_of, segment_of = parsed.time_ms, parsed.session, parsed.user, parsed.segment
    duration_of, index_of, kind_of = parsed.duration_s, parsed.session_event_index, parsed.kind
    mix, worst, tolerance = _mix(parsed, generator.config.funnel)
    price_seen, price_out = _prices(parsed)

    time_figures = _time_figures(t, session_of, user_of, segment_of, duration_of, index_of, kind_of)
    users = catalog.users
    ids = np.arange(catalog.n_users, dtype=np.int64)
    start_ms = generator.start_ms
    registered, churn = users.registered_ms(ids), users.churn_ms(ids)
    horizon = start_ms + HORIZON_DAYS * MS_PER_DAY
    active = (registered <= start_ms) & (churn > start_ms)
    session_start_ms = np.full(int(session_of.max()) + 1 if n else 0, np.iinfo(np.int64).max)
    np.minimum.at(session_start_ms, session_of, t)
    purchase_ratio, fewest_purchases = _order_ratio(generator, t, user_of, segment_of, _order_opened(parsed), active)
    rates = np.sort(users.sessions_per_day(ids[active]))[::-1]
    model_top = float(rates[: max(1, rates.size // 10)].sum() / max(rates.sum(), 1e-12))
    ranked = np.sort(np.bincount(parsed.product[kind_of == VIEW]))[::-1]
    top = max(1, catalog.n_products // 100)
    figures = Figures(
        events=n,
        start_ms=start_ms,
        user_segment_share={seg: float(np.mean(users.segment(ids) == k)) for k, seg in enumerate(SEGMENTS)},
        event_segment_share={seg: float(np.mean(segment_of == k)) for k, seg in enumerate(SEGMENTS)},
        mix=mix,
        mix_max_error_pp=worst,
        mix_tolerance_pp=tolerance,
        price_range=price_seen,
        price_out_of_range=price_out,
        funnel_checked_sessions=checked_sessions,
        funnel_violations=funnel_violations,
        funnel_violation_examples=violation_examples,
        events_before_registration=int((t < registered[user_of]).sum()),
        events_after_churn=int((session_start_ms[session_of] >= churn[user_of]).sum()),
        registered_90d=int(((registered > start_ms) & (registered <= horizon)).sum()),
        churned_90d=int(((churn > start_ms) & (churn <= horizon) & (registered <= start_ms)).sum()),
        active_at_start=int(active.sum()),
        catalog_inconsistencies=_catalog_inconsistencies(generator),
        catalog_vs_stream_purchases=purchase_ratio,
        fewest_expected_purchases=fewest_purchases,
        model_top10pct_share=model_top,
        top1pct_product_view_share=float(ranked[:top].sum() / max(1, ranked.sum())),
        distinct_users=int(np.unique(user_of).size),
        distinct_products=int(np.unique(parsed.product).size),
        field_errors=field_errors,
        timestamps_non_decreasing=bool((np.diff(t) >= 0).all()),
        **time_figures,
    )
    figures.rows = _rows(figures, generator.config)
    figures.signal = measure_signal(parsed, ProductFacts.of(catalog), generator.config.funnel,
                                    seed=generator.config.seed)
    return figures


def _time_figures(t: np.ndarray, session: np.ndarray, user: np.ndarray, segment: np.ndarray,
                  duration: np.ndarray, index: np.ndarray, kind: np.ndarray) -> dict[str, Any]:
    """The store's clock, measured as a consumer would: from timestamps, session ids and user ids."""
    sessions = _SessionTable.of(t, session, user, segment, duration, index)
    head = min(1000, t.size)
    return {
        **_gap_figures(t, session, duration),
        "events_per_session": _quantiles(sessions.size[sessions.complete]),
        "session_minutes": _quantiles((sessions.last - sessions.first)[sessions.complete] / 60_000),
        **_user_spacing(sessions),
        "sessionization_agreement": _sessionization_agreement(t, user, session, sessions.size.size),
        **_cycle_figures(t),
        **_user_figures(user, segment, kind, sessions.segment),
        "steady_start_continuing": float((index[:head] > 1).mean()) if head else 0.0,
        "steady_later_continuing": float((index > 1).mean()) if head else 0.0,
        "steady_start_purchases": int((kind[:head] == 3).sum()),
        "days_covered": float((t.max() - t.min()) / MS_PER_DAY) if t.size else 0.0,
    }


def _gap_figures(t: np.ndarray, session: np.ndarray, duration: np.ndarray) -> dict[str, Any]:
    """Gaps between consecutive events of a session, and whether each view's page fits in its gap."""
    order = np.lexsort((t, session))
    ts, ss, ds = t[order], session[order], duration[order]
    same = ss[1:] == ss[:-1]
    view_next = same & (ds[:-1] > 0)
    coherent = float(((ts[1:] - ts[:-1])[view_next] >= ds[:-1][view_next] * 1000).mean()) if view_next.any() else 1.0
    return {"gap_seconds": _quantiles((ts[1:] - ts[:-1])[same] / 1000), "view_gap_coherence": coherent}


@dataclass
class _SessionTable:
    """Per session id: first and last event (the last page's time included), events, user and segment;
    complete if seen from event 1 and started more than an hour before the sample's last event (so nothing
    of it can be cut off)."""

    first: np.ndarray
    last: np.ndarray
    size: np.ndarray
    owner: np.ndarray
    segment: np.ndarray
    complete: np.ndarray

    @classmethod
    def of(cls, t: np.ndarray, session: np.ndarray, user: np.ndarray, segment: np.ndarray,
           duration: np.ndarray, index: np.ndarray) -> _SessionTable:
        n_sessions = int(session.max()) + 1 if session.size else 0
        first = np.full(n_sessions, np.iinfo(np.int64).max)
        last = np.full(n_sessions, np.iinfo(np.int64).min)
        np.minimum.at(first, session, t)
        np.maximum.at(last, session, t + duration * 1000)
        min_index = np.full(n_sessions, 1 << 30)
        np.minimum.at(min_index, session, index)
        owner = np.zeros(n_sessions, dtype=np.int64)
        owner[session] = user
        seg_of_session = np.zeros(n_sessions, dtype=np.int8)
        seg_of_session[session] = segment
        complete = (min_index == 1) & (first < t.max() - 3_600_000)
        return cls(first, last, np.bincount(session, minlength=n_sessions), owner, seg_of_session, complete)


def _user_spacing(sessions: _SessionTable) -> dict[str, Any]:
    """One user's sessions in time order: never overlapping, >= 30 min apart."""
    by_user = np.lexsort((sessions.first, sessions.owner))
    owner = sessions.owner[by_user]
    between = (sessions.first[by_user][1:] - sessions.last[by_user][:-1])[owner[1:] == owner[:-1]]
    return {"overlapping_sessions": int((between < 0).sum()),
            "min_user_gap_minutes": float(between.min() / 60_000) if between.size else float("inf")}


def _sessionization_agreement(t: np.ndarray, user: np.ndarray, session: np.ndarray, n_sessions: int) -> float:
    """A consumer's 30-minute sessionization (a new group when the user changes or after 30 min idle): the
    share of events whose group holds exactly one session id, that session being in no other group."""
    by_event = np.lexsort((t, user))
    tu, uu, su = t[by_event], user[by_event], session[by_event]
    new_group = np.ones(t.size, dtype=bool)
    new_group[1:] = (uu[1:] != uu[:-1]) | (tu[1:] - tu[:-1] > SESSION_GAP_MS)
    group = np.cumsum(new_group) - 1
    pairs = np.unique(group * (n_sessions + 1) + su)
    sessions_per_group = np.bincount(pairs // (n_sessions + 1))
    groups_per_session = np.bincount(pairs % (n_sessions + 1), minlength=n_sessions)
    agree = (sessions_per_group[group] == 1) & (groups_per_session[su] == 1)
    return float(agree.mean()) if agree.size else 1.0


def _cycle_figures(t: np.ndarray) -> dict[str, Any]:
    """The daily and weekly cycles, over whole days only."""
    hours = (t // 3_600_000) % 24
    days = t // MS_PER_DAY
    whole = (days > days.min()) & (days < days.max())
    per_hour = np.bincount(hours[whole], minlength=24)
    day_counts = np.bincount(days[whole] - days.min())
    day_weekday = (np.arange(day_counts.size) + days.min() + 3) % 7
    has_day = day_counts > 0
    weekend, weekday = has_day & (day_weekday >= 5), has_day & (day_weekday < 5)
    weekend_mean = day_counts[weekend].mean() if weekend.any() else 0
    weekday_mean = day_counts[weekday].mean() if weekday.any() else 1
    return {"busiest_quietest_hour": float(per_hour.max() / max(1, per_hour.min())),
            "weekend_weekday": float(weekend_mean / max(weekday_mean, 1e-9)),
            "whole_days": int(has_day.sum()), "weekend_days": int(weekend.sum())}


def _user_figures(user: np.ndarray, segment: np.ndarray, kind: np.ndarray,
                  session_segment: np.ndarray) -> dict[str, Any]:
    """How events spread over users: the top tenth's share, sessions and purchases per user by segment."""
    per_user = np.bincount(user)
    per_user = np.sort(per_user[per_user > 0])[::-1]
    top = per_user[: max(1, per_user.size // 10)].sum() / max(1, per_user.sum())
    sessions_per_user, purchases_per_user = {}, {}
    for k, name in enumerate(SEGMENTS):
        seg_users = np.unique(user[segment == k]).size
        sessions_per_user[name] = float((session_segment == k).sum() / max(1, seg_users))
        purchases_per_user[name] = float(((kind == 3) & (segment == k)).sum() / max(1, seg_users))
    return {"top10pct_user_share": float(top), "segment_sessions_per_user": sessions_per_user,
            "segment_purchases_per_user": purchases_per_user}


def _order_opened(c: EventColumns) -> np.ndarray:
    """The first event seen of each order (its first item)."""
    opened = np.zeros(len(c), dtype=bool)
    numbered = np.flatnonzero(c.order != NO_ORDER)
    _, first = np.unique(c.order[numbered], return_index=True)
    opened[numbered[first]] = True
    return opened


def _order_ratio(generator: EventGenerator, t: np.ndarray, user: np.ndarray, segment: np.ndarray,
                 order_opened: np.ndarray, active: np.ndarray) -> tuple[dict[str, float], float]:
    """Per segment: orders in the stream / what the catalog's figures as of the start predict for the
    same users (each one's orders per active day x its days in the sample before it churns). Users active
    at the start for at least 30 days only: a newer user's catalog rate is mostly noise."""
    catalog = generator.catalog
    ids = np.flatnonzero(active)
    facts = catalog.user_facts(ids, generator.start_ms)
    active_days = (generator.start_ms - facts["registered_ms"]) / MS_PER_DAY
    eligible = active_days >= 30
    # Each user's days in the sample before churning: a user who leaves mid-way buys for that long only.
    end = int(t.max()) if t.size else generator.start_ms
    days = np.clip(np.minimum(facts["churn_ms"], end) - generator.start_ms, 0, None) / MS_PER_DAY
    chosen = np.zeros(catalog.n_users, dtype=bool)
    chosen[ids[eligible]] = True
    bought = order_opened & chosen[user]
    ratio, fewest = {}, float("inf")
    for k, name in enumerate(SEGMENTS):
        mine = eligible & (facts["segment"] == k)
        expected = (facts["order_count"][mine] / active_days[mine] * days[mine]).sum() / generator.behaviour.partitions
        ratio[name] = float((bought & (segment == k)).sum() / expected) if expected else 0.0
        fewest = min(fewest, float(expected))
    return ratio, fewest


def _field_errors(e: dict[str, Any]) -> int:
    kind = e["interaction_type"]
    errors = 0
    if kind == "purchase":
        errors += not (1 <= e["quantity"] <= 3) or round(e["price"] * e["quantity"], 2) != e["revenue"]
    else:
        errors += e["revenue"] != 0
    if kind == "add_to_cart":
        errors += not (1 <= e["quantity"] <= 3)
    elif kind != "purchase":
        errors += e["quantity"] is not None
    if kind == "view":
        errors += not (5 <= e["duration"] <= 300)
    else:
        errors += e["duration"] is not None
    errors += e["page_url"] != f"/products/{e['category']}/{e['product_id']}"
    return int(errors)


def _catalog_inconsistencies(generator: EventGenerator) -> int:
    """Users whose catalog figures as of the stream's start break a rule: orders without spend (or the
    reverse), activity before registration or after the start, at least a dollar per order."""
    c = generator.catalog
    ids = np.arange(c.n_users, dtype=np.int64)
    facts = c.user_facts(ids, generator.start_ms)
    orders, spent, last = facts["order_count"], facts["total_spent_cents"], facts["last_active_ms"]
    registered = facts["registered_ms"] <= generator.start_ms
    bad = (orders == 0) != (spent == 0)
    bad |= (orders > 0) & (spent < orders * 100)
    bad |= registered & ((last < facts["registered_ms"]) | (last > generator.start_ms))
    bad |= ~registered & ((last != -1) | (orders != 0))
    age = c.users.demographics(ids)[0]
    bad |= (age < 18) | (age > 80)
    return int(bad.sum())


Row = tuple[str, str, str, bool | None]  # (figure, target, measured, passed or None for information)


def _rows(f: Figures, config: ModelConfig) -> list[Row]:
    """The report's rows, in the order printed."""
    return _contract_rows(f, config) + _clock_rows(f) + _user_rows(f) + _lifecycle_rows(f, config)


def _contract_rows(f: Figures, config: ModelConfig) -> list[Row]:
    """Segment shares, interaction mix, prices and the funnel's rules."""
    rows: list[Row] = []
    for i, seg in enumerate(SEGMENTS):
        share = f.user_segment_share[seg]
        rows.append((f"users in segment {seg}", f"{SEGMENT_WEIGHTS[i]:.0%}", f"{share:.2%}",
                     abs(share - SEGMENT_WEIGHTS[i]) < 0.01))
    for seg in SEGMENTS:
        rows.append((f"events from {seg} users", "more for power/premium", f"{f.event_segment_share[seg]:.2%}", None))
    for s, seg in enumerate(SEGMENTS):
        target = "/".join(f"{v * 100:.4g}" for v in target_mix(config.funnel)[s])
        got = "/".join(f"{f.mix[seg][k] * 100:.1f}" for k in INTERACTION_TYPES)
        rows.append((f"mix {seg} (view/click/cart/buy/wish %)", target, got, None))
    widened = f" (1.5 + 3 SE: {f.mix_tolerance_pp:.2f})" if f.mix_tolerance_pp > MIX_TOLERANCE_PP + 0.005 else ""
    rows.append(("largest mix error (percentage points)", f"<= 1.5{widened}", f"{f.mix_max_error_pp:.2f}",
                 f.mix_max_error_pp <= f.mix_tolerance_pp))
    for category, (low, high) in zip(CATEGORIES, CATEGORY_PRICES, strict=True):
        seen = f.price_range.get(category)
        rows.append((f"price {category}", f"${low}-${high}", f"${seen[0]:.2f}-${seen[1]:.2f}" if seen else "-", None))
    rows.append(("prices outside their category's range", "0", str(f.price_out_of_range), f.price_out_of_range == 0))
    rows.append(("funnel violations (sessions seen from start)", "0",
                 f"{f.funnel_violations} in {f.funnel_checked_sessions:,} sessions", f.funnel_violations == 0))
    rows.append(("events with wrong revenue/quantity/duration/url", "0", str(f.field_errors), f.field_errors == 0))
    return rows


def _clock_rows(f: Figures) -> list[Row]:
    """The store's clock: event time, gaps, sessions, sessionization and the cycles."""
    rows: list[Row] = []
    rows.append(("timestamps in position order", "yes", "yes" if f.timestamps_non_decreasing else "no",
                 f.timestamps_non_decreasing))
    per_2m = f.days_covered * 2_000_000 / max(f.events, 1)
    rows.append(("event time covered (days)", "2M events: days, not minutes",
                 f"{f.days_covered:.1f} ({per_2m:.0f} per 2M events)", per_2m >= 1))
    rows.append(("view-gap coherence (next event >= duration later)", "100%", f"{f.view_gap_coherence:.4%}",
                 f.view_gap_coherence == 1.0))
    g = f.gap_seconds
    rows.append(("gap between a session's events p50/p95 (s)", "median tens of s", f"{g['p50']:.0f}/{g['p95']:.0f}",
                 10 <= g["p50"] <= 99))
    m = f.session_minutes
    rows.append(("session length p50/p95/max (min)", "1-60, most a few",
                 f"{m['p50']:.1f}/{m['p95']:.1f}/{m['max']:.1f}", 1 <= m["p50"] <= 15 and m["max"] <= 60))
    per = f.events_per_session
    rows.append(("events per session (mean/p50/p95/max)", "1 to many",
                 f"{per['mean']}/{per['p50']:.0f}/{per['p95']:.0f}/{per['max']:.0f}", None))
    rows.append(("30-minute sessionization agreement", ">= 99%", f"{f.sessionization_agreement:.2%}",
                 f.sessionization_agreement >= 0.99))
    rows.append(("overlapping sessions of one user", "0", str(f.overlapping_sessions), f.overlapping_sessions == 0))
    rows.append(("shortest gap between one user's sessions (min)", ">= 30", f"{f.min_user_gap_minutes:.1f}",
                 f.min_user_gap_minutes >= 30))
    # Figures that need enough event time are information only (no pass/fail) in shorter samples.
    if f.whole_days >= 2:
        rows.append(("busiest / quietest hour of day", "3-5x", f"{f.busiest_quietest_hour:.2f}",
                     3 <= f.busiest_quietest_hour <= 5))
    else:
        rows.append(("busiest / quietest hour of day", "3-5x", "n/a: needs 2 whole days of event time", None))
    if f.weekend_days and f.whole_days > f.weekend_days:
        rows.append(("events per weekend day / weekday", "differs (~1.25)", f"{f.weekend_weekday:.2f}",
                     abs(f.weekend_weekday - 1) >= 0.1))
    else:
        rows.append(("events per weekend day / weekday", "differs (~1.25)", "n/a: needs whole weekend and week days",
                     None))
    return rows


def _user_rows(f: Figures) -> list[Row]:
    """How events spread over users and segments."""
    rows: list[Row] = []
    top = f"{f.top10pct_user_share:.1%} (model: {f.model_top10pct_share:.1%})"
    if f.days_covered >= 30:
        rows.append(("top 10% of users' share of events", ">= 50%", top, f.top10pct_user_share >= 0.5))
    else:
        rows.append(("top 10% of users' share of events", ">= 50%", top + "; judged over >= 30 days only", None))
    spu = f.segment_sessions_per_user
    ppu = f.segment_purchases_per_user
    # A user seen once or twice says nothing of how often its segment visits: judged over a month or more.
    judged = f.days_covered >= 30
    note = "" if judged else "; judged over >= 30 days only"
    rows.append(("sessions per user seen casual/regular/power/premium", "rising",
                 "/".join(f"{spu[s]:.2f}" for s in SEGMENTS) + note,
                 spu["premium"] > spu["power"] > spu["casual"] if judged else None))
    rows.append(("purchases per user seen casual/regular/power/premium", "rising",
                 "/".join(f"{ppu[s]:.2f}" for s in SEGMENTS) + note,
                 ppu["premium"] > ppu["power"] > ppu["casual"] if judged else None))
    return rows


def _lifecycle_rows(f: Figures, config: ModelConfig) -> list[Row]:
    """A steady start, registration and churn, the catalog's agreement, products seen."""
    rows: list[Row] = []
    rows.append(("steady start: share of events continuing a session", f"as later ({f.steady_later_continuing:.1%})",
                 f"{f.steady_start_continuing:.1%} of the first 1000",
                 abs(f.steady_start_continuing - f.steady_later_continuing) <= 0.06))
    rows.append(("steady start: purchases in the first 1000 events", "> 0", str(f.steady_start_purchases),
                 f.steady_start_purchases > 0))
    rows.append(("events before the user's registration", "0", str(f.events_before_registration),
                 f.events_before_registration == 0))
    rows.append(("sessions starting after the user's churn (events)", "0", str(f.events_after_churn),
                 f.events_after_churn == 0))
    rows.append((f"users registered in the {HORIZON_DAYS} days after the start", "> 0",
                 f"{f.registered_90d:,} ({f.registered_90d / max(f.active_at_start, 1):.1%} of active)",
                 f.registered_90d > 0))
    rows.append((f"active users churned in the {HORIZON_DAYS} days after the start", "> 0",
                 f"{f.churned_90d:,} of {f.active_at_start:,} active", f.churned_90d > 0))
    rows.append(("catalog users breaking orders/spend/date rules", "0", str(f.catalog_inconsistencies),
                 f.catalog_inconsistencies == 0))
    ratio = f.catalog_vs_stream_purchases
    ratios = "/".join(f"{ratio[s]:.2f}" for s in SEGMENTS)
    if f.fewest_expected_purchases >= 300:  # Poisson noise under ~6 %
        rows.append(("order rate stream / catalog, per segment", "~1 (0.75-1.33)", ratios,
                     all(0.75 <= ratio[s] <= 1.33 for s in SEGMENTS)))
    else:
        rows.append(("order rate stream / catalog, per segment", "~1 (0.75-1.33)",
                     ratios + "; judged from 300 expected purchases per segment", None))
    rows.append(("share of views on the top 1% of products", "skewed (Zipf)", f"{f.top1pct_product_view_share:.1%}",
                 f.top1pct_product_view_share > 0.3))
    rows.append(("distinct users / products seen", f"of {config.max_users:,} / {config.max_products:,}",
                 f"{f.distinct_users:,} / {f.distinct_products:,}", None))
    return rows


def failed_rows(f: Figures) -> list[str]:
    return [name for name, _t, _m, ok in f.rows if ok is False]


def _table(sections: list[tuple[str, list[tuple[str, str, str, bool | None]]]]) -> list[str]:
    """The rows of every section under one header, columns aligned across sections; a titled section
    starts with its title."""
    rows = [[(a, b, c, "" if ok is None else ("ok" if ok else "FAIL")) for a, b, c, ok in section]
            for _title, section in sections]
    width = [max(len(r[i]) for section in rows for r in section) for i in range(3)]
    header = ("figure", "target", "measured")
    lines = [f"{header[0]:<{width[0]}}  {header[1]:<{width[1]}}  {header[2]:<{width[2]}}  result",
             "-" * (sum(width) + 14)]
    for (title, _section), section_rows in zip(sections, rows, strict=True):
        if title:
            lines += ["", title, "-" * len(title)]
        lines += [f"{a:<{width[0]}}  {b:<{width[1]}}  {c:<{width[2]}}  {d}" for a, b, c, d in section_rows]
    return lines


def format_report(f: Figures, seconds: float | None, config: ModelConfig) -> str:
    """The table; `seconds` None leaves the run's duration out (the README's sample, which a test compares)."""
    sections: list[tuple[str, list[tuple[str, str, str, bool | None]]]] = [("", f.rows)]
    if f.signal is not None:
        sections.append((f"For ML use (train: first {TRAIN_SHARE:.0%} of event time, test: the rest; "
                         f"funnel {f.signal.funnel})", f.signal.rows))
    lines = _table(sections)
    lines.append("")
    failed = failed_rows(f)
    lines.append(f"{f.events:,} events of seed {config.seed} ({config.max_users:,} users) from "
                 f"{np.datetime64(f.start_ms, 'ms')}Z"
                 + (f" measured in {seconds:.1f} s" if seconds is not None else "") + ": "
                 + (f"{len(failed)} FAILED: {', '.join(failed)}" if failed else "every target met."))
    if f.signal is not None:
        ml_failed = signal_failed_rows(f.signal)
        lines.append("For ML use: " + (f"{len(ml_failed)} FAILED: {', '.join(ml_failed)}" if ml_failed
                                       else "every floor met."))
    return "\n".join(lines)


def model_config(seed: int, max_users: int, max_products: int, funnel: str | None) -> ModelConfig:
    """The model the report measures; `funnel` None keeps the default. Raises ConfigError for an unknown one."""
    try:
        return ModelConfig(seed, max_users, max_products, funnel=funnel or DEFAULT_FUNNEL)
    except ValueError as exc:
        raise ConfigError(f"--funnel {funnel}: {exc}") from exc


def run_report(args: argparse.Namespace) -> int:
    """`clickstream report`: prints the table; exit code 1 only when a row fails, 2 for a bad flag."""
    try:
        config = model_config(args.seed, args.max_users, args.max_products, args.funnel)
    except ConfigError as exc:
        print(f"clickstream report: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    started = time.perf_counter()
    generator = EventGenerator(config, shard=args.shard,
                               start_ms=DEFAULT_START_MS if args.start is None else args.start)
    figures = measure(generator, args.events, progress=args.progress or sys.stderr.isatty())
    print(format_report(figures, time.perf_counter() - started, config))
    ml_failed = signal_failed_rows(figures.signal) if figures.signal is not None else []
    return 1 if failed_rows(figures) or ml_failed else 0
