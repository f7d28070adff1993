"""The event-time store model: every figure `clickstream report` prints, asserted on a fixed seed, and the API
the server relies on (position_at, partitions, truth labels, a 10M-user store)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from clickstream.limits import DEFAULT_START_MS
from clickstream.report import Figures, failed_rows, measure
from clickstream.workers.catalog import Catalog
from clickstream.workers.generator import EventGenerator
from clickstream.workers.model import MS_PER_DAY, SEGMENTS, ModelConfig

SMALL = ModelConfig(seed=11, max_users=20_000)  # a small crowd, the default catalog (its skew needs its size)
EVENTS = 300_000


@pytest.fixture(scope="module")
def generator() -> EventGenerator:
    return EventGenerator(SMALL, shard=0)


@pytest.fixture(scope="module")
def figures(generator: EventGenerator) -> Figures:
    return measure(generator, EVENTS)


def test_no_report_row_fails(figures: Figures) -> None:
    assert failed_rows(figures) == []


def test_the_contract_holds(figures: Figures) -> None:
    assert figures.mix_max_error_pp <= 1.5
    assert figures.funnel_violations == 0, figures.funnel_violation_examples
    assert figures.funnel_checked_sessions > 30_000
    assert figures.price_out_of_range == 0 and figures.field_errors == 0
    for segment, target in zip(SEGMENTS, (0.40, 0.35, 0.20, 0.05), strict=True):
        assert abs(figures.user_segment_share[segment] - target) < 0.005
    assert figures.top1pct_product_view_share > 0.3


def test_the_clock(figures: Figures) -> None:
    assert figures.timestamps_non_decreasing
    assert figures.view_gap_coherence == 1.0
    assert 10 <= figures.gap_seconds["p50"] <= 99
    assert 1 <= figures.session_minutes["p50"] <= 15
    assert figures.session_minutes["p95"] <= 60 and figures.session_minutes["max"] <= 60
    assert figures.sessionization_agreement >= 0.99
    assert figures.overlapping_sessions == 0 and figures.min_user_gap_minutes >= 30
    assert figures.days_covered > 30  # 300k events of a 20k-user store: two months


def test_daily_and_weekly_cycles(figures: Figures) -> None:
    assert 3 <= figures.busiest_quietest_hour <= 5
    assert figures.weekend_weekday > 1.1


def test_steady_state_start(figures: Figures) -> None:
    assert abs(figures.steady_start_continuing - figures.steady_later_continuing) <= 0.06
    assert figures.steady_start_purchases > 0


def test_users_differ_and_come_and_go(figures: Figures) -> None:
    assert figures.top10pct_user_share >= 0.5 and figures.model_top10pct_share >= 0.5
    spu, ppu = figures.segment_sessions_per_user, figures.segment_purchases_per_user
    assert spu["premium"] > spu["power"] > spu["casual"]
    assert ppu["premium"] > ppu["power"] > ppu["regular"] > ppu["casual"]
    assert figures.event_segment_share["premium"] > 0.05  # premium users visit more than their 5 % share
    assert figures.events_before_registration == 0 and figures.events_after_churn == 0
    assert figures.registered_90d > 0 and figures.churned_90d > 0
    assert figures.catalog_inconsistencies == 0
    assert all(0.75 <= r <= 1.33 for r in figures.catalog_vs_stream_purchases.values())


def test_position_at_counts_events_before_a_time(generator: EventGenerator) -> None:
    events = generator.behaviour.events(0, 200_000).copy()
    assert generator.position_at(DEFAULT_START_MS - 1) == 0 and generator.position_at(DEFAULT_START_MS) == 0
    for k in (1, 999, 54_321, 199_999):
        t = int(events.time_ms[k])
        assert generator.position_at(t) == int(np.searchsorted(events.time_ms, t))
    fresh = EventGenerator(SMALL, catalog=generator.catalog)  # no epoch computed yet: no scan either
    far = DEFAULT_START_MS + 400 * MS_PER_DAY
    position = fresh.position_at(far)
    assert position > 1_000_000
    around = fresh.behaviour.events(position - 1, 2)
    assert around.time_ms[0] < far <= around.time_ms[1]


def test_events_per_second_follows_the_daily_cycle(generator: EventGenerator) -> None:
    night = generator.events_per_second(DEFAULT_START_MS + 4 * 3_600_000)
    evening = generator.events_per_second(DEFAULT_START_MS + 19 * 3_600_000)
    assert 3 <= evening / night <= 5


def test_a_start_mid_epoch_is_a_steady_slice_of_the_same_store(generator: EventGenerator) -> None:
    start = DEFAULT_START_MS + 3 * MS_PER_DAY + 12_345
    later = EventGenerator(SMALL, start_ms=start, catalog=generator.catalog)
    rows = later.behaviour.events(0, 2000)
    assert rows.time_ms[0] >= start and (rows.session_event_index > 1).mean() > 0.7
    offset = generator.position_at(start)  # the same store and shard: the same events from there on
    same = generator.behaviour.events(offset, 2000)
    assert (same.session_key == rows.session_key).all() and (same.time_ms == rows.time_ms).all()


def test_partitions_split_users_and_never_share_one() -> None:
    config = ModelConfig(seed=5, max_users=60_000, max_products=2_000)
    catalog = EventGenerator(config, partition=0, partitions=2).catalog
    users = []
    for w in (0, 1):
        part = EventGenerator(config, shard=w, partition=w, partitions=2, catalog=catalog)
        users.append(set(part.behaviour.events(0, 50_000).user.tolist()))
    assert users[0] and users[1] and not users[0] & users[1]


def test_user_records_as_of_the_start_with_truth_only_when_asked(generator: EventGenerator) -> None:
    catalog = Catalog.build(SMALL, generator.catalog.cities, with_names=True)
    plain = catalog.user_record(123, DEFAULT_START_MS)
    assert "truth" not in plain
    labelled = catalog.user_record(123, DEFAULT_START_MS, truth=True)
    truth = labelled.pop("truth")
    assert labelled == plain
    assert isinstance(truth, dict) and set(truth) == {
        "segment", "activity_tier", "sessions_per_day", "registration_time", "churn_time"}
    assert truth["segment"] == plain["user_segment"]
    assert truth["registration_time"][:10] == plain["registration_date"]
    json.dumps(labelled)
    # A user who registers after the start has no activity as of the start.
    late = catalog.user_record(SMALL.max_users - 1, DEFAULT_START_MS)
    assert late["last_active"] is None and late["order_count"] == 0 and late["total_spent"] == 0


def test_ten_million_users_cost_little_and_start_fast() -> None:
    code = (
        "import time, resource\n"
        "t = time.perf_counter()\n"
        "from clickstream.workers.generator import EventGenerator\n"
        "from clickstream.workers.model import ModelConfig\n"
        "from clickstream.workers.places import load_cities\n"
        "cities = load_cities(ModelConfig(max_users=10_000_000))\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "t = time.perf_counter()\n"
        "g = EventGenerator(ModelConfig(max_users=10_000_000), cities=cities)\n"
        "g.render(0, 4096)\n"
        "print(time.perf_counter() - t, g.behaviour.epoch_ms, g.row_bytes)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    seconds, epoch_ms, _ = out.stdout.split()
    assert float(seconds) < 10
    assert int(epoch_ms) < MS_PER_DAY  # a big store takes short epochs (at most ~400k events each)


def test_a_short_report_judges_only_what_its_sample_can_show(generator: EventGenerator) -> None:
    short = measure(generator, 5_000)
    assert failed_rows(short) == []
    undecided = {name for name, _t, _m, ok in short.rows if ok is None}
    assert "busiest / quietest hour of day" in undecided and "top 10% of users' share of events" in undecided
    assert short.mix_tolerance_pp > 1.5  # widened by the standard error of a small sample
    assert short.model_top10pct_share >= 0.5


def test_a_failing_row_is_marked_fail(figures: Figures) -> None:
    from dataclasses import replace

    from clickstream.report import _rows, format_report

    broken = replace(figures, view_gap_coherence=0.9)
    broken.rows = _rows(broken, SMALL)
    assert failed_rows(broken) == ["view-gap coherence (next event >= duration later)"]
    text = format_report(broken, 1.0, SMALL)
    assert "FAIL" in text and "1 FAILED" in text
    # The section For ML use fails on a model without its signals; the realism rows alone have no FAIL.
    assert "FAIL" not in format_report(replace(figures, signal=None), 1.0, SMALL)
