"""The generated data as a data scientist would look at it: a seeded stream in pandas, sessionized with a
30-minute timeout, events per hour, the heaviest users, and a co-view recommender against popularity.
It also recomputes three figures of the report's section For ML use (`clickstream/ml_signal.py`) in pandas,
independently of its numpy code, and prints each beside the report's: hit-rate@10 of the user's taste and of
popularity (1), consecutive views sharing a category against other sessions' views (4), and P(add_to_cart |
view) by duration quintile, budget and rating (5).

    pip install pandas && python bench/data_check.py --events 2000000

It parses the NDJSON a client receives (not the model's arrays). pandas is not a dependency of the
project: this script is the only thing that needs it.
"""

from __future__ import annotations

import argparse
import io
import time
from typing import Any

import ujson

from clickstream.workers.generator import EventGenerator
from clickstream.workers.model import ModelConfig

CHUNK = 250_000


def load(events: int) -> Any:
    import pandas as pd

    generator = EventGenerator(ModelConfig())
    parts = [pd.read_json(io.BytesIO(generator.render(first, min(CHUNK, events - first)).tobytes()), lines=True)
             for first in range(0, events, CHUNK)]
    frame = pd.concat(parts, ignore_index=True)
    frame["ts"] = pd.to_datetime(frame["timestamp"])
    return frame


def sessions(df: Any) -> None:
    import pandas as pd

    df = df.sort_values(["user_id", "ts"], kind="stable")
    gap = df.groupby("user_id").ts.diff()
    df["sess30"] = (gap.isna() | (gap > pd.Timedelta(minutes=30))).cumsum()
    agree = (df.groupby("sess30").session_id.transform("nunique").eq(1)
             & df.groupby("session_id").sess30.transform("nunique").eq(1))
    minutes = df.groupby("session_id").ts.agg(lambda s: (s.max() - s.min()).total_seconds() / 60)
    print(f"30-minute sessionization agreement: {agree.mean():.4f}")
    print("session minutes p50/p95/max:", [round(x, 1) for x in minutes.quantile([0.5, 0.95, 1]).tolist()])


def time_profile(df: Any) -> None:
    hourly = df.set_index("ts").resample("1h").size()
    by_hour = hourly.groupby(hourly.index.hour).mean()
    by_day = hourly.groupby(hourly.index.day_of_week).mean()
    print(f"busiest / quietest hour of day: {by_hour.max() / by_hour.min():.2f}")
    print("mean events per hour, Monday to Sunday:", by_day.round(0).astype(int).tolist())
    activity = df.user_id.value_counts()
    top = activity.iloc[: max(1, len(activity) // 10)].sum() / len(df)
    print(f"top 10% of users' share of events: {top:.3f} ({len(activity):,} users)")


def recommenders(df: Any) -> None:
    """hit-rate@10 on the last 20 % of event time: global popularity, and the user's last product's co-views."""
    df = df.sort_values("ts")
    cut = df.ts.quantile(0.8)
    train, test = df[df.ts <= cut], df[df.ts > cut]
    popular = train[train.interaction_type == "view"].product_id.value_counts().index[:10].tolist()
    targets = test[test.interaction_type.isin(["view", "purchase"])]
    seen = train[["session_id", "product_id"]].drop_duplicates()
    pairs = seen.merge(seen, on="session_id")
    pairs = pairs[pairs.product_id_x != pairs.product_id_y]
    counts = pairs.groupby(["product_id_x", "product_id_y"]).size().rename("n").reset_index()
    top = counts.sort_values("n", ascending=False).groupby("product_id_x").head(10)
    co_viewed = top.groupby("product_id_x").product_id_y.apply(list).to_dict()
    last = train.groupby("user_id").product_id.last().to_dict()

    def recommend(user: str) -> list[str]:
        mine = list(co_viewed.get(last.get(user), []))
        return (mine + [p for p in popular if p not in mine])[:10]

    sample = targets.sample(min(20_000, len(targets)), random_state=1)
    hits = sum(product in recommend(user) for user, product in zip(sample.user_id, sample.product_id, strict=True))
    print(f"hit-rate@10: popularity {targets.product_id.isin(popular).mean():.4f}, "
          f"co-view of the last product {hits / len(sample):.4f}")


def _split(df: Any) -> tuple[Any, Any]:
    """Train: events before the time that leaves 80 % of the events before it; test: the rest."""
    cut = df.ts.sort_values().iloc[min(int(len(df) * 0.8), len(df) - 1)]
    return df[df.ts < cut], df[df.ts >= cut]


def taste_hit_rates(df: Any) -> dict[str, tuple[float, float]]:
    """Figure 1: per test view or purchase of a user with train events, is the product among the 10 most
    viewed train products (popularity), or among the user's 10 best (share of the user's train events in
    the product's category) x (the product's train views) (taste)?"""
    train, test = _split(df)
    views = train[train.interaction_type == "view"].product_id.value_counts().rename("views").reset_index()
    views["category"] = views.product_id.map(df.drop_duplicates("product_id").set_index("product_id").category)
    views = views.sort_values(["views", "product_id"], ascending=[False, True])
    popular = set(views.product_id.head(10))
    candidates = views.groupby("category").head(10)
    taste = train.groupby("user_id").category.value_counts(normalize=True).rename("share").reset_index()
    scored = taste.merge(candidates, on="category")
    scored["score"] = scored.share * scored.views
    top = scored.sort_values(["user_id", "score"], ascending=[True, False]).groupby("user_id").head(10)
    recommended = set(zip(top.user_id, top.product_id, strict=True))
    known = test[test.user_id.isin(set(train.user_id))]
    rates = {}
    for kind in ("view", "purchase"):
        mine = known[known.interaction_type == kind]
        hits = [pair in recommended for pair in zip(mine.user_id, mine.product_id, strict=True)]
        rates[kind] = (float(mine.product_id.isin(popular).mean()), sum(hits) / max(len(hits), 1))
    return rates


def category_coherence(df: Any) -> tuple[float, float]:
    """Figure 4: a session's consecutive views sharing a category; and ordered pairs of one user's views from
    different sessions sharing one, counted from group sizes (pairs within one user minus pairs within one
    session)."""
    views = df[df.interaction_type == "view"].sort_values(["session_id", "session_event_index"])
    same_session = views.session_id.eq(views.session_id.shift())
    consecutive = views.category.eq(views.category.shift())[same_session].mean()

    def squares(*keys: str) -> float:
        return float((views.groupby(list(keys)).size().astype("float64") ** 2).sum())

    across = ((squares("user_id", "category") - squares("session_id", "category"))
              / (squares("user_id") - squares("session_id")))
    return float(consecutive), across


def cart_after_view(df: Any, rating: Any) -> dict[str, tuple[float, float]]:
    """Figure 5: views of sessions that ended within the sample (first event an hour before its end) whose
    session's next event on the product is an add_to_cart; the rate on each side of three splits
    (unfavourable side first)."""
    import pandas as pd

    df = df.sort_values(["session_id", "product_id", "session_event_index"])
    nxt = df.groupby(["session_id", "product_id"]).interaction_type.shift(-1)
    df = df.assign(carted=nxt.eq("add_to_cart"))
    views = df[df.interaction_type == "view"].copy()
    views["budget"] = views.groupby(["user_id", "category"]).price.transform("median")
    first = df.groupby("session_id").ts.transform("min")
    ended = first <= df.ts.max() - pd.Timedelta(hours=1)
    views = views[ended[views.index]]
    views["rating"] = views.product_id.map(rating)
    low, high = views.duration.quantile([0.2, 0.8])
    middle = views.rating.median()

    def side(mask: Any) -> float:
        return float(views.carted[mask].mean())

    return {"duration": (side(views.duration <= low), side(views.duration >= high)),
            "budget": (side(views.price > views.budget), side(views.price < views.budget)),
            "rating": (side(views.rating < middle), side(views.rating > middle))}


def ml_cross_check(df: Any, events: int) -> None:
    """Figures 1, 4 and 5 in pandas beside the report's numpy figures on the same events."""
    from clickstream.columns import ColumnBuilder
    from clickstream.ml_signal import ProductFacts, measure_signal

    generator = EventGenerator(ModelConfig())
    builder = ColumnBuilder()
    for first in range(0, events, CHUNK):
        for line in generator.render(first, min(CHUNK, events - first)).tobytes().splitlines():
            builder.add(ujson.loads(line))
    report = measure_signal(builder.columns(), ProductFacts.of(generator.catalog), seed=generator.config.seed)
    catalog = generator.catalog
    rating = {catalog.product_id(p): int(r) for p, r in enumerate(catalog.product_rating_tenths)}
    print("For ML use, pandas / report:")
    for kind, (popular, taste) in taste_hit_rates(df).items():
        print(f"  hit-rate@10 of test {kind}s: taste {taste:.4f} / {report.hit_taste[kind]:.4f}, "
              f"popularity {popular:.4f} / {report.hit_popular[kind]:.4f}")
    consecutive, across = category_coherence(df)
    print(f"  consecutive views sharing a category {consecutive:.4f} / {report.consecutive_same_category:.4f}, "
          f"other sessions' views {across:.4f} / {report.cross_session_same_category:.4f}")
    ours = {"duration": report.cart_by_duration, "budget": report.cart_by_budget, "rating": report.cart_by_rating}
    for split, (bad, good) in cart_after_view(df, rating).items():
        print(f"  P(cart|view) by {split}: unfavourable {bad:.4f} / {ours[split][0]:.4f}, "
              f"favourable {good:.4f} / {ours[split][1]:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description="the generated data in pandas, as a data scientist would see it")
    parser.add_argument("--events", type=int, default=2_000_000, help="events of seed 7 (default 2000000)")
    events = parser.parse_args().events
    started = time.perf_counter()
    df = load(events)
    days = (df.ts.max() - df.ts.min()).total_seconds() / 86400
    print(f"{len(df):,} events over {days:.1f} days of event time (loaded in {time.perf_counter() - started:.0f} s)")
    print("interaction mix:", df.interaction_type.value_counts(normalize=True).round(4).to_dict())
    sessions(df)
    time_profile(df)
    recommenders(df)
    ml_cross_check(df, events)


if __name__ == "__main__":
    main()
