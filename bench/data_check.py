"""The generated data as a data scientist would look at it: a seeded stream in pandas, sessionized with a
30-minute timeout, events per hour, the heaviest users, and a co-view recommender against popularity.

    pip install pandas && python bench/data_check.py --events 2000000

It parses the NDJSON a client receives (not the model's arrays). pandas is not a dependency of the
project: this script is the only thing that needs it.
"""

from __future__ import annotations

import argparse
import io
import time
from typing import Any

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


if __name__ == "__main__":
    main()
