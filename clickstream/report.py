"""The realism report: each target of the contract beside what the generated data measures.

It measures the NDJSON a client would receive (parsed line by line, not the generator's internal arrays),
so it checks the encoder too. `clickstream report --events 1000000 --seed 7` prints it; the test suite
asserts the same figures on a fixed seed.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import ujson

from .limits import DEFAULT_START_MS
from .workers.generator import EventGenerator
from .workers.model import (
    CATEGORIES,
    CATEGORY_PRICES,
    INTERACTION_TYPES,
    SEGMENT_MIX,
    SEGMENT_ORDERS,
    SEGMENT_SPEND,
    SEGMENT_WEIGHTS,
    SEGMENTS,
    ModelConfig,
)

REPORT_START_MS = DEFAULT_START_MS


@dataclass
class Figures:
    events: int
    rate_eps: int
    user_segment_share: dict[str, float]
    event_segment_share: dict[str, float]
    mix: dict[str, dict[str, float]]  # segment -> type -> share
    mix_max_error_pp: float
    price_range: dict[str, tuple[float, float]]
    price_out_of_range: int
    funnel_checked_sessions: int
    funnel_violations: int
    funnel_violation_examples: list[str]
    events_per_session: dict[str, float]
    session_seconds: dict[str, float]
    top1pct_product_view_share: float
    distinct_users: int
    distinct_products: int
    user_inconsistencies: int  # catalog users breaking the spend/orders/date rules
    field_errors: int  # revenue, quantity, duration or page_url not as specified
    timestamps_non_decreasing: bool


def _quantiles(values: list[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        return {"mean": 0.0, "p50": 0.0, "p95": 0.0, "max": 0.0}
    return {
        "mean": round(float(array.mean()), 2),
        "p50": round(float(np.percentile(array, 50)), 2),
        "p95": round(float(np.percentile(array, 95)), 2),
        "max": round(float(array.max()), 2),
    }


def measure(generator: EventGenerator, events: int, rate_eps: int, first_seq: int = 0) -> Figures:
    """Generate `events` events of the generator's stream at `rate_eps` and measure them."""
    catalog = generator.catalog
    segment_of: list[str] = []
    mix_counts: dict[str, Counter[str]] = defaultdict(Counter)
    price_seen: dict[str, list[float]] = defaultdict(lambda: [float("inf"), float("-inf")])
    price_out = 0
    field_errors = 0
    views: Counter[str] = Counter()
    users: set[str] = set()
    products: set[str] = set()
    sessions: dict[str, dict[str, Any]] = {}
    violations: list[str] = []
    last_ts = ""
    ordered = True
    price_bounds = dict(zip(CATEGORIES, CATEGORY_PRICES, strict=True))

    chunk = 65_536
    for start in range(first_seq, first_seq + events, chunk):
        count = min(chunk, first_seq + events - start)
        data = generator.render_stamped(start, count, REPORT_START_MS, rate_eps).tobytes()
        for line in data.splitlines():
            e = ujson.loads(line)
            kind, segment, pid = e["interaction_type"], e["user_segment"], e["product_id"]
            segment_of.append(segment)
            mix_counts[segment][kind] += 1
            users.add(e["user_id"])
            products.add(pid)
            if e["timestamp"] < last_ts:
                ordered = False
            last_ts = e["timestamp"]
            low, high = price_bounds[e["category"]]
            seen = price_seen[e["category"]]
            seen[0], seen[1] = min(seen[0], e["price"]), max(seen[1], e["price"])
            price_out += not (low <= e["price"] <= high)
            field_errors += _field_errors(e)
            if kind == "view":
                views[pid] += 1
            session = sessions.get(e["session_id"])
            if session is None:
                session = sessions[e["session_id"]] = {
                    "from_start": e["session_event_index"] == 1, "viewed": set(), "touched": set(), "cart": set(),
                    "events": 0, "first": e["timestamp"], "last": e["timestamp"],
                }
            session["events"] += 1
            session["last"] = e["timestamp"]
            if session["from_start"]:
                problem = _funnel_problem(session, kind, pid)
                if problem:
                    session["problems"] = session.get("problems", 0) + 1
                    if len(violations) < 5:
                        violations.append(f"{e['session_id']} #{e['session_event_index']}: {problem}")

    n = len(segment_of)
    event_share = Counter(segment_of)
    mix: dict[str, dict[str, float]] = {}
    worst = 0.0
    for s, segment in enumerate(SEGMENTS):
        total = sum(mix_counts[segment].values()) or 1
        mix[segment] = {t: mix_counts[segment][t] / total for t in INTERACTION_TYPES}
        for t, target in zip(INTERACTION_TYPES, SEGMENT_MIX[s], strict=True):
            worst = max(worst, abs(mix[segment][t] - target) * 100)

    complete = [s for s in sessions.values() if s["from_start"]]
    seconds = [(_epoch_ms(s["last"]) - _epoch_ms(s["first"])) / 1000 for s in complete]
    ranked = sorted(views.values(), reverse=True)
    top = max(1, catalog.n_products // 100)
    return Figures(
        events=n,
        rate_eps=rate_eps,
        user_segment_share={seg: float(np.mean(catalog.user_segment == i)) for i, seg in enumerate(SEGMENTS)},
        event_segment_share={seg: event_share[seg] / n for seg in SEGMENTS},
        mix=mix,
        mix_max_error_pp=worst,
        price_range={c: (v[0], v[1]) for c, v in price_seen.items()},
        price_out_of_range=price_out,
        funnel_checked_sessions=len(complete),
        funnel_violations=sum(s.get("problems", 0) for s in sessions.values()),
        funnel_violation_examples=violations,
        events_per_session=_quantiles([s["events"] for s in complete]),
        session_seconds=_quantiles(seconds),
        top1pct_product_view_share=sum(ranked[:top]) / max(1, sum(ranked)),
        distinct_users=len(users),
        distinct_products=len(products),
        user_inconsistencies=_user_inconsistencies(generator),
        field_errors=field_errors,
        timestamps_non_decreasing=ordered,
    )


def _funnel_problem(session: dict[str, Any], kind: str, product: str) -> str | None:
    """Apply one event to a session seen from its start; say what is wrong with it, if anything."""
    problem = None
    if kind == "add_to_cart" and product not in session["touched"]:
        problem = f"add_to_cart of {product} never viewed or clicked in the session"
    elif kind == "purchase" and product not in session["cart"]:
        problem = f"purchase of {product} not in the session's cart"
    elif kind == "wishlist" and product not in session["viewed"]:
        problem = f"wishlist of {product} never viewed in the session"
    if kind == "view":
        session["viewed"].add(product)
    if kind in ("view", "click"):
        session["touched"].add(product)
    if kind == "add_to_cart":
        session["cart"].add(product)
    return problem


def _field_errors(e: dict[str, Any]) -> int:
    kind = e["interaction_type"]
    errors: int = 0
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
    return errors


def _epoch_ms(timestamp: str) -> int:
    return int(np.datetime64(timestamp.rstrip("Z"), "ms").astype(np.int64))


def _user_inconsistencies(generator: EventGenerator) -> int:
    c = generator.catalog
    spend_lo = np.array([r[0] for r in SEGMENT_SPEND])[c.user_segment] * 100
    spend_hi = np.array([r[1] for r in SEGMENT_SPEND])[c.user_segment] * 100
    orders_lo = np.array([r[0] for r in SEGMENT_ORDERS])[c.user_segment]
    orders_hi = np.array([r[1] for r in SEGMENT_ORDERS])[c.user_segment]
    bad = (c.user_order_count == 0) & (c.user_total_spent_cents != 0)
    bad |= (c.user_order_count > 0) & (c.user_total_spent_cents == 0)
    bad |= (c.user_total_spent_cents < spend_lo) & (c.user_order_count > 0) | (c.user_total_spent_cents > spend_hi)
    bad |= (c.user_order_count < orders_lo) | (c.user_order_count > orders_hi)
    bad |= c.user_active_days_ago > c.user_registered_days_ago
    bad |= (c.user_age < 18) | (c.user_age > 80)
    return int(bad.sum())


def format_report(f: Figures, seconds: float, config: ModelConfig) -> str:
    rows: list[tuple[str, str, str]] = []
    for i, seg in enumerate(SEGMENTS):
        rows.append((f"users in segment {seg}", f"{SEGMENT_WEIGHTS[i]:.0%}", f"{f.user_segment_share[seg]:.2%}"))
    for seg in SEGMENTS:
        rows.append((f"events from {seg} users", "", f"{f.event_segment_share[seg]:.2%}"))
    for s, seg in enumerate(SEGMENTS):
        target = "/".join(f"{v * 100:.0f}" for v in SEGMENT_MIX[s])
        got = "/".join(f"{f.mix[seg][t] * 100:.1f}" for t in INTERACTION_TYPES)
        rows.append((f"mix {seg} (view/click/cart/buy/wish %)", target, got))
    rows.append(("largest mix error (percentage points)", "<= 1.5", f"{f.mix_max_error_pp:.2f}"))
    for category, (low, high) in zip(CATEGORIES, CATEGORY_PRICES, strict=True):
        seen = f.price_range.get(category)
        rows.append((f"price {category}", f"${low}-${high}", f"${seen[0]:.2f}-${seen[1]:.2f}" if seen else "-"))
    rows.append(("prices outside their category's range", "0", str(f.price_out_of_range)))
    rows.append(("funnel violations (sessions seen from start)", "0",
                 f"{f.funnel_violations} in {f.funnel_checked_sessions:,} sessions"))
    per = f.events_per_session
    rows.append(("events per session (mean/p50/p95/max)", "1 to many",
                 f"{per['mean']}/{per['p50']:.0f}/{per['p95']:.0f}/{per['max']:.0f}"))
    secs = f.session_seconds
    rows.append((f"session length at rate={f.rate_eps}/s (mean/p95/max s)", "1-60 min (see note)",
                 f"{secs['mean']:.1f}/{secs['p95']:.1f}/{secs['max']:.1f}"))
    rows.append(("share of views on the top 1% of products", "skewed (Zipf)",
                 f"{f.top1pct_product_view_share:.1%}"))
    rows.append(("distinct users / products seen", f"of {config.max_users:,} / {config.max_products:,}",
                 f"{f.distinct_users:,} / {f.distinct_products:,}"))
    rows.append(("catalog users breaking spend/orders/dates rules", "0", str(f.user_inconsistencies)))
    rows.append(("events with wrong revenue/quantity/duration/url", "0", str(f.field_errors)))
    rows.append(("timestamps non-decreasing", "yes", "yes" if f.timestamps_non_decreasing else "NO"))
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    header = ("figure", "target", "measured")
    lines = [f"{header[0]:<{width[0]}}  {header[1]:<{width[1]}}  {header[2]}", "-" * (sum(width) + 4)]
    lines += [f"{a:<{width[0]}}  {b:<{width[1]}}  {c}" for a, b, c in rows]
    lines.append("")
    lines.append(f"{f.events:,} events of seed {config.seed} measured in {seconds:.1f} s. A session's wall-clock")
    lines.append(f"length is its events x {config.lanes:,} concurrent sessions / rate: lower rates, longer sessions.")
    return "\n".join(lines)


def run_report(args: argparse.Namespace) -> int:
    config = ModelConfig(args.seed, args.max_users, args.max_products)
    started = time.perf_counter()
    generator = EventGenerator(config)
    figures = measure(generator, args.events, args.rate)
    print(format_report(figures, time.perf_counter() - started, config))
    return 0 if figures.funnel_violations == 0 and figures.mix_max_error_pp <= 1.5 else 1
